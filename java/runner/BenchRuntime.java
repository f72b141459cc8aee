package bench;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.net.JarURLConnection;
import java.net.URL;
import java.net.URLConnection;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.locks.LockSupport;
import java.util.jar.Attributes;
import org.pytorch.DType;
import org.pytorch.IValue;
import org.pytorch.MemoryFormat;
import org.pytorch.Tensor;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;

/**
 * The measurement sequence of docs/runner-contract.md shared by the Java runners (the counterpart of
 * python/runner_common.py's {@code measure}): read and check the job ({@link Job}), the bridge's settings,
 * the inputs, load (timed), warm up (calls timed one by one, then for warmup_s), the timed loop in
 * {@code bare_rounds} runs alternating with the bare pass, peak RSS, timer overhead, then outputs, timings, warm-up
 * timings and the result JSON last. A runner (its Runner.java, rendered from one small template per variant)
 * supplies only a {@link Model}: how it holds the inputs, loads the model, makes one call and copies its output,
 * and for a load job ({@link LoadPhase}: caller threads after the slots pass) how its callers share the model and
 * call it.
 *
 * <p>Threads, inter-op threads and the grad mode cannot be set from pytorch_java_only's API: the harness
 * passes them to the bridge as PYTORCH_JNI_* environment variables, the bridge applies them when it loads
 * and reports what is in force as pytorch.jni.* system properties, which this runtime checks against the
 * job and reports ({@link Model#setUp}'s default). A runner on another runtime (ONNX Runtime) loads no
 * bridge and says itself what it put in force.
 *
 * <p>Inputs: a built-in model takes one float32 tensor, read from the file as floats ({@link Inputs#floats}, the
 * runners' fast path); a user's model may take several of several dtypes ({@link Inputs#tensor}), each runner
 * making one tensor per input of its dtype, or refusing a dtype its runtime cannot make
 * ({@link Model#cannotMake}).
 *
 * <p>Outputs: getDataAsFloatArray gives the storage order of the Java tensor, and the bridge (like the
 * official one) keeps a channels-last output channels-last; such an output is reordered here to contiguous
 * NCHW (NCDHW), the order the contract and the reference use. A tuple, list or dict of tensors is flattened
 * in pytree order, each tensor converted to float32 ({@link TensorModel}).
 */
public final class BenchRuntime {
  static final int TIMER_OVERHEAD_BLOCKS = 1000;
  // the largest Java array the HotSpot VM allocates
  static final long MAX_ARRAY = Integer.MAX_VALUE - 8;
  static final int WRITE_CHUNK_FLOATS = 1 << 20;
  /** Manifest attributes the pom writes: the runner the build was rendered for, the artifacts' versions. */
  static final String MANIFEST_RUNNER = "Bench-Runner";
  static final String MANIFEST_ARTIFACT = "Bench-Artifact-";

  private BenchRuntime() {}

  /**
   * One way to call the loaded model: the runner itself, or a load job's caller thread (docs/runner-contract.md,
   * "Load job"), which calls from its own thread with its own per-call state over the same loaded model.
   */
  public interface Caller<Y> {
    /** On the caller's own thread, before its first call: what is per thread there (e.g. a grad mode). */
    default void enter() {}

    /** One call on batch {@code slot}; with one call per block the clock reads bracket it alone. */
    Y call(int slot);

    /**
     * Copies one call's output ({@code length} = batch x output_size floats) into {@code out} at
     * {@code offset}, in contiguous order; an output of another size is refused with {@link Fail}.
     */
    void copy(Y output, float[] out, int offset, int length);
  }

  /**
   * How a runner's load-job callers share its model: {@code shared} when they all call the one loaded model,
   * {@code note} the result's load.note.
   */
  public record Sharing(boolean shared, String note) {}

  /** What differs between the Java runners; {@code Y} is what one call returns. */
  public interface Model<Y> extends Caller<Y> {
    /** The job options this runner supports (rule 9 of the job rules); any other is refused by name. */
    default List<String> supportedOptions() {
      return List.of();
    }

    /**
     * Step 1, before any tensor work: put the job's threads and grad mode in force and say what is in
     * force (facts about it go to {@code extra}). The default loads the bridge (libtorch), which took the
     * settings from PYTORCH_JNI_*, and checks what it reports against the job.
     */
    default InForce setUp(Job job, ObjectNode extra) {
      return Bridge.setUp(job, extra);
    }

    /**
     * Why this runner cannot make an input tensor of {@code dtype} (one of the contract's), or null if it can:
     * a job with such an input is refused before anything is loaded, naming the dtype.
     */
    default String cannotMake(String dtype) {
      return null;
    }

    /**
     * Untimed, before the load: {@code inputs} holds the inputs of every slot, slot after slot (read-only
     * views of the inputs file): {@link Inputs#floats} for the one float32 tensor of a built-in model
     * ({@code job.singleFloat}, {@code job.slots * job.inputLength} floats), {@link Inputs#tensor} for each of
     * input_tensors; keep them in this runner's form.
     */
    void inputs(Job job, Inputs inputs);

    /** Load the job's model_file: timed, as load_ns. */
    void load(Job job);

    /**
     * After the result is written and every caller has finished: free what the load made that would outlive the
     * process (System.exit runs no native destructor), e.g. the folder AOTInductor's loader extracted a package to.
     */
    default void close() {}

    /**
     * A load job (docs/runner-contract.md, "Load job"), asked before the load: how this runner's callers share
     * its model; throw {@link Fail} (from {@link Job#refused}) naming why, where they cannot.
     */
    Sharing sharing(Job job);

    /**
     * Load-job caller {@code index}'s call, made on the main thread after the slots pass: this model itself where
     * a call keeps no state of its own, else one with its own per-call state (input and output buffers) over the
     * same loaded model.
     */
    Caller<Y> caller(int index);

    /** This runner's own facts for the result's extra. */
    default void facts(ObjectNode extra) {}

    /**
     * Whether each call returns a new output object that no later call overwrites: then the timed loop
     * holds up to {@link #HELD} of them and copies them together outside the clock reads. A runner whose
     * output lives in a buffer it refills per call answers false and is copied after every call.
     */
    default boolean freshOutputs() {
      return false;
    }

    /**
     * Whether {@code call(slot)} itself leaves its output in slot {@code slot} of a buffer the runner holds
     * (one place per slot, as the outputs file): then the timed loop copies nothing per call, and
     * {@link #collect} copies the places a run of timed calls wrote, after it, outside the clock reads.
     */
    default boolean outputsInSlots() {
      return false;
    }

    /** Copies slots {@code [from, from + count)} of the runner's own buffer into {@code out} at {@code from * length}. */
    default void collect(float[] out, int from, int count, int length) {
      throw new UnsupportedOperationException("collect: only a runner whose outputsInSlots() is true");
    }
  }

  /** Outputs held before they are copied together (docs/runner-contract.md: as the Python runtime). */
  public static final int HELD = 64;

  /** What a runner's settings are in force, as the result reports them. */
  public record InForce(String libtorchVersion, String libtorchPath, int threads, int interopThreads,
      String gradMode) {}

  /**
   * A runner whose calls return what org.pytorch's Module.forward returns: one Tensor (the fast path), copied
   * with getDataAsFloatArray, or a tuple, list or dict of them, flattened in pytree order (docs/runner-contract.md,
   * "Several inputs, any dtype"), each converted to float32. A channels-last tensor (the bridge, like the
   * official one, keeps that layout) is reordered to contiguous NCHW (NCDHW), the order the contract and the
   * reference use. org.pytorch.Tensor has no bool dtype: a job with a bool input is refused.
   */
  public abstract static class TensorModel implements Model<IValue> {
    /** The memory format of the last output (CONTIGUOUS unless the model returns channels-last). */
    private MemoryFormat lastFormat = MemoryFormat.CONTIGUOUS;

    @Override
    public String cannotMake(String dtype) {
      return dtype.equals("bool") ? NO_BOOL_TENSOR : null;
    }

    @Override
    public final void copy(IValue result, float[] out, int offset, int length) {
      if (result.isTensor()) { // one tensor: every built-in model
        Tensor t = result.toTensor();
        if (t.dtype() == DType.FLOAT32) {
          float[] data = t.getDataAsFloatArray();
          checkLength(data.length, Arrays.toString(t.shape()), length);
          put(t, data, out, offset);
          return;
        }
      }
      List<Tensor> leaves = new ArrayList<>();
      flatten(result, result, leaves);
      long values = 0;
      for (Tensor t : leaves) {
        values += t.numel();
      }
      if (values != length) {
        List<String> shapes = new ArrayList<>();
        for (Tensor t : leaves) {
          shapes.add(Arrays.toString(t.shape()));
        }
        checkLength(values, String.join(" + ", shapes), length);
      }
      for (Tensor t : leaves) {
        float[] data = floats(t);
        put(t, data, out, offset);
        offset += data.length;
      }
    }

    /** data (t's elements as float32, in its storage order) into out[offset..], in contiguous order. */
    private void put(Tensor t, float[] data, float[] out, int offset) {
      MemoryFormat format = t.memoryFormat();
      if (format == MemoryFormat.CONTIGUOUS) {
        System.arraycopy(data, 0, out, offset, data.length);
      } else {
        lastFormat = format;
        channelsLastToContiguous(data, t.shape(), out, offset);
      }
    }

    /** Each forward returns a new Tensor with its own buffer (the bridge copies the output into it). */
    @Override
    public final boolean freshOutputs() {
      return true;
    }

    /** CHANNELS_LAST: the model returned channels-last tensors, reordered to NCHW in the timed calls. */
    @Override
    public void facts(ObjectNode extra) {
      extra.put("output_memory_format", lastFormat.name());
    }
  }

  /** Why the TorchScript runners refuse a bool input (docs/runner-contract.md; the harness skips with it too). */
  static final String NO_BOOL_TENSOR = "org.pytorch.Tensor (pytorch_java_only) has no bool dtype";

  /**
   * The tensors of a forward's result in pytree order: a tensor is itself, a tuple's or a list's items in
   * order, a dict's values in its insertion order (the bridge builds a LinkedHashMap), recursively; anything
   * else fails the runner, naming what the model returned.
   */
  static void flatten(IValue value, IValue result, List<Tensor> into) {
    if (value.isTensor()) {
      into.add(value.toTensor());
    } else if (value.isTensorList()) {
      into.addAll(Arrays.asList(value.toTensorList()));
    } else if (value.isTuple() || value.isList()) {
      for (IValue item : value.isTuple() ? value.toTuple() : value.toList()) {
        flatten(item, result, into);
      }
    } else if (value.isDictStringKey() || value.isDictLongKey()) {
      for (IValue item : (value.isDictStringKey() ? value.toDictStringKey() : value.toDictLongKey()).values()) {
        flatten(item, result, into);
      }
    } else {
      String what = value == result ? describe(result) : describe(result) + " holding " + describe(value);
      throw new Fail("the model returned " + what + ", not a tensor or a tuple, list or dict of tensors "
          + "(docs/runner-contract.md, \"Several inputs, any dtype\")");
    }
  }

  /** What an IValue is, in Python's words. */
  static String describe(IValue v) {
    if (v.isNull()) {
      return "None";
    }
    if (v.isTensor()) {
      return "a tensor";
    }
    if (v.isBool() || v.isLong() || v.isDouble() || v.isString()) {
      return v.isBool() ? "a bool " + v.toBool() : v.isLong() ? "an int " + v.toLong()
          : v.isDouble() ? "a float " + v.toDouble() : "a str";
    }
    if (v.isBoolList() || v.isLongList() || v.isDoubleList()) {
      return v.isBoolList() ? "a list of bools" : v.isLongList() ? "a list of ints" : "a list of floats";
    }
    return v.isTuple() ? "a tuple" : v.isTensorList() || v.isList() ? "a list" : "a dict";
  }

  /** A tensor's elements converted to float32 (int8/uint8 as their values), in its storage order. */
  static float[] floats(Tensor t) {
    switch (t.dtype()) {
      case FLOAT32:
        return t.getDataAsFloatArray();
      case FLOAT64: {
        double[] d = t.getDataAsDoubleArray();
        float[] f = new float[d.length];
        for (int i = 0; i < d.length; i++) {
          f[i] = (float) d[i];
        }
        return f;
      }
      case INT64: {
        long[] d = t.getDataAsLongArray();
        float[] f = new float[d.length];
        for (int i = 0; i < d.length; i++) {
          f[i] = d[i];
        }
        return f;
      }
      case INT32: {
        int[] d = t.getDataAsIntArray();
        float[] f = new float[d.length];
        for (int i = 0; i < d.length; i++) {
          f[i] = d[i];
        }
        return f;
      }
      default: { // INT8, UINT8
        boolean unsigned = t.dtype() == DType.UINT8;
        byte[] d = unsigned ? t.getDataAsUnsignedByteArray() : t.getDataAsByteArray();
        float[] f = new float[d.length];
        for (int i = 0; i < d.length; i++) {
          f[i] = unsigned ? d[i] & 0xFF : d[i];
        }
        return f;
      }
    }
  }

  /**
   * The inputs of the slots used (the first slots * batch samples of each tensor), memory-mapped read-only
   * views of the inputs file: no copy on the heap besides the runner's own arrays.
   */
  public static final class Inputs {
    private final FloatBuffer floats;
    private final ByteBuffer[] tensors;

    private Inputs(FloatBuffer floats, ByteBuffer[] tensors) {
      this.floats = floats;
      this.tensors = tensors;
    }

    /** The one float32 tensor's little-endian bytes, also as floats. */
    static Inputs ofFloats(ByteBuffer bytes) {
      return new Inputs(bytes.duplicate().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer(), new ByteBuffer[] {bytes});
    }

    /** The one float32 tensor when it is the only input (job.singleFloat), as floats; null otherwise. */
    public FloatBuffer floats() {
      return floats;
    }

    /** input_tensors[k]'s samples of the slots used, little-endian, as the file holds them. */
    public ByteBuffer tensor(int k) {
      return tensors[k].duplicate().order(ByteOrder.LITTLE_ENDIAN);
    }

    /**
     * input_tensors[k]'s samples of the slots used on the heap in native byte order: what a direct buffer
     * of native order is refilled from, byte for byte, per call.
     */
    public byte[] nativeBytes(int k, int elementBytes) {
      ByteBuffer from = tensor(k);
      ByteBuffer to = ByteBuffer.allocate(from.remaining()).order(ByteOrder.nativeOrder());
      switch (elementBytes) { // the bit patterns, swapped where the host is big-endian
        case 8 -> to.asLongBuffer().put(from.asLongBuffer());
        case 4 -> to.asIntBuffer().put(from.asIntBuffer());
        default -> to.put(from);
      }
      return to.array();
    }
  }

  /**
   * The timed loop's runs of blocks and the bare pass's runs (steps 5 and 6), as methods of their own: the
   * warm-up's time part runs them too, so the code the timings come from is compiled by then (its own methods,
   * not a loop inside run() that the JIT meets for the first time when the timing starts). {@code slot} is the
   * next timed call's batch and output slot, {@code bareSlot} the next bare call's, {@code last} the bare pass's
   * last output.
   */
  static final class Loops<Y> {
    private final Model<Y> model;
    private final int slots;
    private final int block;
    private final int outputLength;
    private final boolean fresh;
    private final boolean inSlots;
    private final List<Y> held = new ArrayList<>(HELD);
    private final int[] heldSlots = new int[HELD];
    int slot;
    int bareSlot;
    Y last;

    Loops(Model<Y> model, int slots, int block, int outputLength) {
      this.model = model;
      this.slots = slots;
      this.block = block;
      this.outputLength = outputLength;
      this.fresh = model.freshOutputs();
      this.inSlots = model.outputsInSlots();
    }

    /** Timed blocks {@code [from, to)} into {@code timings}, their outputs into their slots of {@code outputs}. */
    void timedRun(long[] timings, int from, int to, float[] outputs) {
      if (inSlots) {
        int first = slot;
        for (int b = from; b < to; b++) {
          long t0 = System.nanoTime();
          for (int j = 0; j < block; j++) {
            model.call(slot);
            if (++slot == slots) {
              slot = 0;
            }
          }
          timings[b] = System.nanoTime() - t0;
        }
        collectRun(model, outputs, first, (long) (to - from) * block, slots, outputLength);
      } else if (block == 1 && fresh) {
        for (int b = from; b < to; b++) {
          long t0 = System.nanoTime();
          Y y = model.call(slot);
          long t1 = System.nanoTime();
          timings[b] = t1 - t0;
          held.add(y);
          heldSlots[held.size() - 1] = slot;
          if (held.size() == HELD) {
            copyHeld(model, held, heldSlots, outputs, outputLength);
          }
          if (++slot == slots) {
            slot = 0;
          }
        }
        copyHeld(model, held, heldSlots, outputs, outputLength);
      } else if (block == 1) {
        for (int b = from; b < to; b++) {
          long t0 = System.nanoTime();
          Y y = model.call(slot);
          long t1 = System.nanoTime();
          timings[b] = t1 - t0;
          model.copy(y, outputs, slot * outputLength, outputLength);
          if (++slot == slots) {
            slot = 0;
          }
        }
      } else {
        for (int b = from; b < to; b++) {
          long t0 = System.nanoTime();
          for (int j = 0; j < block; j++) {
            model.copy(model.call(slot), outputs, slot * outputLength, outputLength);
            if (++slot == slots) {
              slot = 0;
            }
          }
          timings[b] = System.nanoTime() - t0;
        }
      }
    }

    /** {@code calls} bare calls, one clock read before and one after them: their duration in ns. */
    long bareRun(int calls) {
      long t0 = System.nanoTime();
      for (int i = 0; i < calls; i++) {
        last = model.call(bareSlot);
        if (++bareSlot == slots) {
          bareSlot = 0;
        }
      }
      return System.nanoTime() - t0;
    }
  }

  /** Slots {@code [first, first + calls)} modulo {@code slots}, collected from the model's own buffer. */
  private static void collectRun(Model<?> model, float[] outputs, int first, long calls, int slots, int length) {
    if (calls >= slots) {
      model.collect(outputs, 0, slots, length);
      return;
    }
    int count = (int) calls;
    int head = Math.min(count, slots - first);
    model.collect(outputs, first, head, length);
    if (head < count) {
      model.collect(outputs, 0, count - head, length);
    }
  }

  /** Copies the held outputs into their slots, outside the clock reads, and lets them go. */
  private static <Y> void copyHeld(Model<Y> model, List<Y> held, int[] slots, float[] outputs, int length) {
    for (int k = 0; k < held.size(); k++) {
      model.copy(held.get(k), outputs, slots[k] * length, length);
    }
    held.clear();
  }

  /** Refuses an output of {@code values} floats where the job says {@code length}. */
  public static void checkLength(long values, String shape, int length) {
    if (values != length) {
      throw new Fail("model output " + shape + " has " + values + " values, the job says batch x output_size = "
          + length);
    }
  }

  /** A refusal: its message is the one line printed on stderr (no stack trace), exit status 1. */
  public static final class Fail extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public Fail(String message) {
      super(message, null, false, false);
    }
  }

  /** Runs the job named by the one argument with {@code model}; exits 0 or 1 (never returns). */
  public static void main(String[] args, Model<?> model) {
    int status = 0;
    try {
      run(args, model);
      model.close();
    } catch (Fail f) {
      System.err.println(f.getMessage());
      status = 1;
    } catch (Throwable t) {
      t.printStackTrace();
      System.err.println("bench.Runner: " + oneLine(t)); // the harness reports the last line
      status = 1;
    }
    // DestructorThread (fbjni) is not a daemon thread: leave explicitly.
    System.exit(status);
  }

  static <Y> void run(String[] args, Model<Y> model) throws IOException {
    if (args.length != 1) {
      throw new Fail("usage: java ... bench.Runner <job.json>");
    }
    Job job = Job.read(Path.of(args[0]), model.supportedOptions());
    for (int k = 0; k < job.inputTensors.size(); k++) { // after the ten rules, the runner's own checks
      String dtype = job.inputTensors.get(k).dtype();
      String why = model.cannotMake(dtype);
      if (why != null) {
        throw job.tensorRefused(k, "is a " + dtype + " input: " + why);
      }
    }

    // 1. Threads and grad mode, before any tensor work and outside the timed model load.
    ObjectNode extra = Job.JSON.createObjectNode();
    InForce settings = model.setUp(job, extra);
    Sharing sharing = job.load == null ? null : model.sharing(job);

    // 2. Inputs, untimed: the samples of the slots used (the first slots * batch of each tensor).
    model.inputs(job, job.singleFloat ? Inputs.ofFloats(mapFloats(job, (long) job.slots * job.inputLength))
        : mapTensors(job));

    // 3. Load, timed.
    long start = System.nanoTime();
    model.load(job);
    long loadNs = System.nanoTime() - start;

    int slots = job.slots;
    int outputLength = job.outputLength;
    int block = job.block;

    float[] outputs = new float[slots * outputLength];
    long[] timings = new long[job.calls / block];
    long[] bareNs = new long[job.bareCalls > 0 && job.load == null ? job.bareRounds : 0]; // a load job has none
    int blocksPerRound = timings.length / job.bareRounds;
    int barePerRound = bareNs.length == 0 ? 0 : job.bareCalls / job.bareRounds;
    Loops<Y> loops = new Loops<>(model, slots, block, outputLength);

    // 4. Warm-up, each call timed; the first is the first call. Call w uses batch w % slots.
    //    Its output is copied after the clock read, as in the timed loop, so the copy is warm too.
    //    Then more calls until warmup_s has passed since the warm-up began (a count alone is over in a fraction of
    //    a ms on a fast path, before C2 has compiled the call), made by the timed loop's and the bare pass's own
    //    methods: after a warm-up in a loop of its own, C2 had compiled the call but not the loop the timings
    //    come from, and java-aoti-minimal-ffm's timed loop still stepped from 0.085 to 0.063 µs a call in mid-run
    //    after 2 s of it. They write into the timed loop's own buffers, which the timed calls overwrite (slots <=
    //    calls: every slot is written again), so the warm-up holds no memory of its own. The clock is read between
    //    those runs: the warm-up may pass warmup_s by one run of the timed loop and its share of the bare pass.
    long[] warmupTimings = new long[job.warmupCalls];
    float[] scratch = new float[outputLength];
    long warmStart = System.nanoTime();
    for (int i = 0; i < warmupTimings.length; i++) {
      long t0 = System.nanoTime();
      Y y = model.call(i % slots);
      warmupTimings[i] = System.nanoTime() - t0;
      model.copy(y, scratch, 0, outputLength);
    }
    long warmUntil = warmStart + (long) (job.warmupS * 1e9);
    long warmupCallsMade = warmupTimings.length;
    if (System.nanoTime() - warmUntil < 0) {
      loops.slot = (int) (warmupCallsMade % slots);
      do {
        loops.timedRun(timings, 0, blocksPerRound, outputs);
        loops.bareSlot = loops.slot; // warm-up call w on batch w % slots, through both loops
        loops.bareRun(barePerRound);
        loops.slot = loops.bareSlot;
        warmupCallsMade += (long) blocksPerRound * block + barePerRound;
      } while (System.nanoTime() - warmUntil < 0);
    }
    long warmupNs = System.nanoTime() - warmStart;
    loops.slot = 0; // timed call i and bare call i on batch i % slots
    loops.bareSlot = 0;
    loops.last = null;

    // 5. Timed loop: the clock is read once per block; call i uses batch and output slot i % slots.
    //    With one call per block the clock reads bracket the call alone and its output is copied
    //    after the second read (a runner with fresh outputs: held, and HELD of them copied together
    //    outside the clock reads); with larger blocks the copy is inside. A runner whose calls write
    //    their own slots is copied from after each run of timed blocks, before its bare pass.
    // 6. Bare pass: the seed's loop over bare_calls calls (bare call i uses batch i % slots), only the
    //    last output kept. The timed blocks run in bare_rounds equal runs, each followed by its share
    //    of the bare pass with one clock read around it, so both see the same machine state.
    for (int r = 0; r < job.bareRounds; r++) {
      loops.timedRun(timings, r * blocksPerRound, (r + 1) * blocksPerRound, outputs);
      if (bareNs.length > 0) {
        bareNs[r] = loops.bareRun(barePerRound);
      }
    }
    Y last = loops.last;
    require(bareNs.length == 0 || last != null, "the bare pass made no call");

    // A load job: the callers, after the slots pass filled the outputs they are checked against.
    ObjectNode load = null;
    if (job.load != null) {
      long timedNs = 0;
      for (long ns : timings) {
        timedNs += ns;
      }
      load = LoadPhase.run(job, model, sharing, outputs, (double) timedNs / job.calls);
    }

    // 7. Peak memory, read by the process itself after the bare pass (or the load phase).
    Long peakRssKb = peakRssKb();

    // 8. Timer overhead: median of empty blocks.
    long timerOverheadNs = timerOverheadNs();

    // 9. Outputs, timings, warm-up timings, then the result JSON last.
    writeFloats(job.outputs, outputs);
    Files.write(job.timings, longsLittleEndian(timings));
    Files.write(job.warmupTimings, longsLittleEndian(warmupTimings));

    ObjectNode result = Job.JSON.createObjectNode();
    result.put("runner", job.runner);
    result.put("status", "ok");
    result.put("runtime", System.getProperty("java.vm.name") + " " + System.getProperty("java.version"));
    result.put("libtorch_version", settings.libtorchVersion());
    result.put("libtorch_path", settings.libtorchPath());
    result.put("threads", settings.threads());
    result.put("interop_threads", settings.interopThreads());
    result.put("grad_mode", settings.gradMode());
    result.put("load_ns", loadNs);
    result.put("first_call_ns", warmupTimings[0]);
    result.put("calls", job.calls);
    result.put("warmup_calls", job.warmupCalls);
    result.put("warmup_s", job.warmupS);
    result.put("warmup_calls_made", warmupCallsMade);
    result.put("warmup_ns", warmupNs);
    result.put("block", block);
    result.put("batch", job.batch);
    result.put("timer_overhead_ns", timerOverheadNs);
    result.put("bare_calls", job.bareCalls);
    result.put("bare_rounds", job.bareRounds);
    ArrayNode bare = result.putArray("bare_ns");
    for (long ns : bareNs) {
      bare.add(ns);
    }
    result.put("peak_rss_kb", peakRssKb);
    result.set("extra", extra);
    if (load != null) {
      result.set("load", load);
    }
    ArrayNode jvmArgs = extra.putArray("jvm_input_arguments");
    for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
      jvmArgs.add(a);
    }
    extra.put("java_vendor", System.getProperty("java.vendor"));
    extra.put("java_vm_version", System.getProperty("java.vm.version"));
    // the JDK it ran on (a suite entry may name one: harness/jdks.py), as the JVM itself reports it
    extra.put("java_home", System.getProperty("java.home"));
    extra.put("java_runtime_version", System.getProperty("java.runtime.version"));
    Attributes build = buildManifest();
    for (Map.Entry<Object, Object> e : build.entrySet()) {
      String name = e.getKey().toString();
      if (name.startsWith(MANIFEST_ARTIFACT)) {
        extra.put(name.substring(MANIFEST_ARTIFACT.length()), e.getValue().toString());
      }
    }
    extra.put("template_runner", build.getValue(MANIFEST_RUNNER));
    extra.put("model_kind", job.modelKind);
    extra.put("model_file", job.modelFile.toString());
    model.facts(extra);
    writeAtomically(job.result, Job.JSON.writerWithDefaultPrettyPrinter().writeValueAsString(result) + "\n");
  }

  /**
   * The load job (docs/runner-contract.md, "Load job"): after the timed slots pass, {@code callers} threads call the
   * one loaded model for duration_s, closed (as fast as they can) or at Poisson arrivals; every output is compared,
   * {@link #HELD} at a time and outside the latency, with its slot's output from the slots pass.
   */
  static final class LoadPhase {
    /**
     * A caller parks only until this long before an arrival (or the start), then spins to it: on a VM whose cores go
     * idle a park ends up to ~14 ms late (measured here), which would count as the model's latency.
     */
    static final long SPIN_NS = 50_000_000;
    /**
     * Each caller first runs its own loop this long, its figures dropped: a measured run that starts in the
     * interpreter runs its first tens of thousands of iterations there (measured here: the first Poisson queries
     * at 2.3M/s fell 0.28 s behind, and no rate above 146,000/s held a 1 ms p99), then in the JIT's code.
     */
    static final long WARM_NS = 300_000_000;
    /**
     * The most latencies a caller's list starts with (1 GiB); it grows beyond them. Growing mid-run copies the whole
     * list: at 1 << 24 a 10 s run at 2.9M/s stalled at its 16,777,217th query and ended with a p99 of 0.5 s.
     */
    static final int MAX_RESERVED = 1 << 27;

    private LoadPhase() {}

    /**
     * Runs the callers and writes their latencies; returns the result's load record. {@code meanCallNs}, the slots
     * pass's mean, sizes the latency lists before the callers start.
     */
    static <Y> ObjectNode run(Job job, Model<Y> model, Sharing sharing, float[] kept, double meanCallNs)
        throws IOException {
      Job.Load load = job.load;
      int n = load.callers();
      double capacity = 1e9 / Math.max(1, meanCallNs); // calls per second of one caller at the slots pass's speed
      double perCaller = load.closed() ? capacity : Math.min(capacity, load.rate() / n);
      int reserved = (int) Math.min(MAX_RESERVED, perCaller * load.durationS() * 1.25 + 1024);
      List<Caller<Y>> calls = new ArrayList<>();
      for (int c = 0; c < n; c++) {
        calls.add(model.caller(c)); // made with noop too: the process holds what it holds for a real load
      }
      ObjectNode record = load.noop()
          ? runCallers(job, NoopCaller.standIns(calls, kept, job.outputLength), model.freshOutputs(), kept, reserved)
          : runCallers(job, calls, model.freshOutputs(), kept, reserved);
      record.put("shared_model", sharing.shared());
      record.put("noop", load.noop());
      record.put("note", sharing.note());
      return record;
    }

    /**
     * The callers' threads, caller c calling through {@code calls.get(c)}, holding outputs as a runner with
     * {@code fresh} outputs does; writes their latencies and returns the record's figures.
     */
    private static <Y> ObjectNode runCallers(Job job, List<Caller<Y>> calls, boolean fresh, float[] kept, int reserved)
        throws IOException {
      Job.Load load = job.load;
      int n = load.callers();
      List<Worker<Y>> workers = new ArrayList<>();
      for (int c = 0; c < n; c++) {
        workers.add(new Worker<>(c, calls.get(c), fresh, job, kept, reserved));
      }
      CountDownLatch arrived = new CountDownLatch(n);
      CountDownLatch released = new CountDownLatch(1);
      long durationNs = (long) (load.durationS() * 1e9);
      long[] start = new long[1]; // written before `released` opens, read after it
      boolean[] abort = new boolean[1];
      List<Thread> threads = new ArrayList<>();
      for (Worker<Y> w : workers) {
        Thread t = new Thread(() -> {
          boolean counted = false;
          try {
            w.caller.enter();
            w.warm(load, w.index * Math.max(1, job.slots / n), load.rate() / n, load.seed() + w.index);
            arrived.countDown();
            counted = true;
            released.await();
            if (abort[0]) {
              return;
            }
            waitUntil(start[0]);
            if (load.closed()) {
              w.closed(start[0] + durationNs, w.index * Math.max(1, job.slots / n));
            } else {
              w.poisson(start[0], start[0] + durationNs, load.rate() / n, load.seed() + w.index);
            }
          } catch (Throwable e) {
            w.error = e;
            if (!counted) {
              arrived.countDown();
            }
          }
        }, "caller-" + w.index);
        t.setDaemon(true);
        threads.add(t);
        t.start();
      }
      try {
        arrived.await();
        waitForGo(load);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted while the callers got ready", e);
      } catch (RuntimeException e) {
        abort[0] = true;
        released.countDown();
        throw e;
      }
      start[0] = System.nanoTime() + 1_000_000; // 1 ms: every caller is past the latch by then
      released.countDown();
      for (Thread t : threads) {
        try {
          t.join();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new IllegalStateException("interrupted while the callers ran", e);
        }
      }
      long elapsed = System.nanoTime() - start[0];
      for (Worker<Y> w : workers) {
        if (w.error instanceof RuntimeException r) {
          throw r;
        }
        if (w.error instanceof Error e) {
          throw e;
        }
        if (w.error != null) {
          throw new IllegalStateException(w.error);
        }
      }
      writeLatencies(load.latencies(), workers);

      ObjectNode record = Job.JSON.createObjectNode();
      record.put("mode", load.mode());
      record.put("callers", n);
      ArrayNode counts = record.putArray("counts");
      long issued = 0;
      long unissued = 0;
      long checked = 0;
      long mismatches = 0;
      for (Worker<Y> w : workers) {
        counts.add(w.latencyCount);
        issued += w.latencyCount;
        unissued += w.unissued;
        checked += w.checked;
        mismatches += w.mismatches;
      }
      record.put("elapsed_ns", elapsed);
      record.put("issued", issued);
      record.put("unissued", unissued);
      record.put("checked", checked);
      record.put("mismatches", mismatches);
      return record;
    }

    /**
     * The no-op stand-in for a call (a load job's noop): {@code call(slot)} hands back the slot's kept output from
     * the slots pass (a copy made before the callers start) and {@code copy} puts it in the caller's held buffer, as a
     * real output's copy does. A caller's latency is then its loop's own cost, and every check finds its slot's output.
     * {@code enter} is the runner's caller's, so each thread is set up as for the real calls.
     */
    static final class NoopCaller implements Caller<float[]> {
      private final Caller<?> runner;
      private final float[][] outputs; // per slot, shared by the callers (read only)

      private NoopCaller(Caller<?> runner, float[][] outputs) {
        this.runner = runner;
        this.outputs = outputs;
      }

      /** One stand-in per caller of {@code calls}, over the kept outputs ({@code length} floats per slot). */
      static <Y> List<Caller<float[]>> standIns(List<Caller<Y>> calls, float[] kept, int length) {
        float[][] outputs = new float[kept.length / length][];
        for (int s = 0; s < outputs.length; s++) {
          outputs[s] = Arrays.copyOfRange(kept, s * length, (s + 1) * length);
        }
        List<Caller<float[]>> standIns = new ArrayList<>();
        for (Caller<Y> c : calls) {
          standIns.add(new NoopCaller(c, outputs));
        }
        return standIns;
      }

      @Override
      public void enter() {
        runner.enter();
      }

      @Override
      public float[] call(int slot) {
        return outputs[slot];
      }

      @Override
      public void copy(float[] output, float[] out, int offset, int length) {
        System.arraycopy(output, 0, out, offset, length);
      }
    }

    /** Several processes start their callers together: each says it is ready, then waits for the go file. */
    static void waitForGo(Job.Load load) throws IOException, InterruptedException {
      if (load.ready() != null) {
        Files.writeString(load.ready(), "ready\n", StandardCharsets.US_ASCII);
      }
      if (load.go() == null) {
        return;
      }
      long giveUp = System.nanoTime() + 600_000_000_000L;
      while (!Files.exists(load.go())) {
        if (System.nanoTime() - giveUp > 0) {
          throw new Fail("load: no go file " + load.go() + " after 600 s: the harness that started this process "
              + "is gone");
        }
        Thread.sleep(1);
      }
    }

    /** Until System.nanoTime() reaches {@code due}: parked until shortly before it, then spinning. */
    static void waitUntil(long due) {
      long ahead = due - System.nanoTime();
      if (ahead > SPIN_NS) {
        LockSupport.parkNanos(ahead - SPIN_NS);
      }
      while (System.nanoTime() - due < 0) {
        Thread.onSpinWait();
      }
    }

    /** Every caller's latencies, int64 LE, caller after caller. */
    static <Y> void writeLatencies(Path path, List<Worker<Y>> workers) throws IOException {
      ByteBuffer chunk = ByteBuffer.allocate(8 * 65536).order(ByteOrder.LITTLE_ENDIAN);
      try (FileChannel channel = FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
          StandardOpenOption.TRUNCATE_EXISTING)) {
        for (Worker<Y> w : workers) {
          for (int from = 0; from < w.latencyCount; from += 65536) {
            int count = Math.min(65536, w.latencyCount - from);
            chunk.clear();
            chunk.asLongBuffer().put(w.latencies, from, count);
            chunk.limit(count * Long.BYTES);
            while (chunk.hasRemaining()) {
              channel.write(chunk);
            }
          }
        }
      }
    }

    /**
     * A draw of a Poisson count of the given mean: by multiplying uniforms below a mean of 30, by the normal
     * approximation above it (the count of queries a caller never issued, not a figure of the model).
     */
    static long poissonCount(SplittableRandom rng, double mean) {
      if (mean <= 0) {
        return 0;
      }
      if (mean >= 30) {
        return Math.max(0, Math.round(mean + Math.sqrt(mean) * rng.nextGaussian()));
      }
      double limit = Math.exp(-mean);
      long k = 0;
      for (double p = rng.nextDouble(); p > limit; p *= rng.nextDouble()) {
        k++;
      }
      return k;
    }

    /** One caller thread: its call, its latencies and its outputs held for the check. */
    static final class Worker<Y> {
      final int index;
      final Caller<Y> caller;
      final boolean fresh; // its outputs stay valid: held, then copied together outside the latency
      final int slots;
      final int length;
      final float[] kept;
      final float[] held;
      final int[] used = new int[HELD];
      final List<Y> outputs = new ArrayList<>(HELD);
      int count;
      long[] latencies;
      int latencyCount;
      long checked;
      long mismatches;
      long unissued;
      Throwable error;

      Worker(int index, Caller<Y> caller, boolean fresh, Job job, float[] kept, int reserved) {
        this.index = index;
        this.caller = caller;
        this.fresh = fresh;
        this.slots = job.slots;
        this.length = job.outputLength;
        this.kept = kept;
        this.held = new float[HELD * length];
        this.latencies = new long[reserved];
      }

      /**
       * The loop the measured run uses, for WARM_NS (closed, or Poisson at its rate), then its figures dropped: the
       * measured run enters the loop's compiled code. A mismatch here fails the job as one there would.
       */
      void warm(Job.Load load, int first, double rate, long seed) {
        long start = System.nanoTime();
        if (load.closed()) {
          closed(start + WARM_NS, first);
        } else {
          poisson(start, start + WARM_NS, rate, ~seed);
        }
        if (mismatches > 0) {
          throw new IllegalStateException("load: " + mismatches + " of the warm-up's " + checked
              + " outputs differ from their slots' outputs of the timed pass");
        }
        latencyCount = 0;
        checked = 0;
        unissued = 0;
      }

      /** Closed: as fast as possible until the deadline; call k uses slot (first + k) % slots. */
      void closed(long deadline, int first) {
        int s = first % slots;
        long t1;
        do {
          long t0 = System.nanoTime();
          Y y = caller.call(s);
          t1 = System.nanoTime();
          latency(t1 - t0);
          take(y, s);
          if (++s == slots) {
            s = 0;
          }
        } while (t1 - deadline < 0);
        check();
      }

      /**
       * Poisson: arrivals with exponential gaps at {@code rate} per second (this caller's share), each waited for,
       * then called; the latency runs from the scheduled arrival to the completion, so time behind schedule
       * counts. No query is issued after the deadline: those due before it but not issued are counted, their number
       * drawn, not enumerated, so a rate far above capacity ends on time. Call k uses slot (index + 7919 k) % slots.
       */
      void poisson(long start, long deadline, double rate, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        double meanGapNs = 1e9 / rate;
        double t = start;
        for (long k = 0;; k++) {
          t += rng.nextExponential() * meanGapNs;
          if (t >= deadline) {
            break;
          }
          long due = (long) t;
          long now = System.nanoTime();
          if (now - deadline >= 0) { // behind schedule at the end: the rest are never issued
            unissued += 1 + poissonCount(rng, (deadline - due) / meanGapNs);
            break;
          }
          if (due - now > 0) {
            waitUntil(due);
          }
          int s = (int) ((index + k * 7919) % slots);
          Y y = caller.call(s);
          latency(System.nanoTime() - due);
          take(y, s);
        }
        check();
      }

      private void latency(long ns) {
        if (latencyCount == latencies.length) {
          latencies = Arrays.copyOf(latencies, Math.max(1024, latencies.length * 2));
        }
        latencies[latencyCount++] = ns;
      }

      /** After the latency's clock read: the output held (fresh) or copied into its place now. */
      private void take(Y y, int slot) {
        if (fresh) {
          outputs.add(y);
        } else {
          caller.copy(y, held, count * length, length);
        }
        used[count++] = slot;
        if (count == HELD) {
          check();
        }
      }

      /** The held outputs against their slots' kept outputs: exact float equality (NaN never equal), as torch.equal. */
      private void check() {
        for (int k = 0; k < outputs.size(); k++) {
          caller.copy(outputs.get(k), held, k * length, length);
        }
        outputs.clear();
        for (int k = 0; k < count; k++) {
          int got = k * length;
          int want = used[k] * length;
          for (int j = 0; j < length; j++) {
            if (held[got + j] != kept[want + j]) {
              mismatches++;
              break;
            }
          }
        }
        checked += count;
        count = 0;
      }
    }
  }

  /**
   * data holds a channels-last tensor of the given [N, C, spatial...] shape in its storage order
   * (N, spatial..., C); writes it to out[offset..] in contiguous order (N, C, spatial...).
   */
  static void channelsLastToContiguous(float[] data, long[] shape, float[] out, int offset) {
    if (shape.length < 3) {
      throw new IllegalStateException("a channels-last output of shape " + Arrays.toString(shape));
    }
    int n = (int) shape[0];
    int c = (int) shape[1];
    int spatial = data.length / Math.max(1, n * c);
    int dst = offset;
    for (int i = 0; i < n; i++) {
      int base = i * spatial * c;
      for (int k = 0; k < c; k++) {
        for (int s = 0, src = base + k; s < spatial; s++, src += c) {
          out[dst++] = data[src];
        }
      }
    }
  }

  /** What the bridge reported in force, as system properties set from its JNI_OnLoad. */
  static final class Bridge {
    String libtorchVersion;
    String libtorchPath;
    String bridgePath;
    String gradMode;
    boolean graphOptimizer;
    int threads;
    int interopThreads;

    /**
     * Loads libpytorch_jni, which applies PYTORCH_JNI_* in its JNI_OnLoad, here rather than in the timed
     * Module.load (which would otherwise pay for loading libtorch; NativePeer's own loadLibrary is then a
     * no-op), and checks what it reports against the job.
     */
    static InForce setUp(Job job, ObjectNode extra) {
      long start = System.nanoTime();
      System.loadLibrary("pytorch_jni");
      long loadNs = System.nanoTime() - start;
      Bridge b = read();
      require(b.gradMode.equals(job.gradMode), "the job asks grad_mode=" + job.gradMode + " but the bridge runs "
          + b.gradMode + ": set PYTORCH_JNI_GRAD_MODE (harness.java_build.java_env)");
      require(b.threads == job.threads, "the job asks threads=" + job.threads + " but the bridge runs "
          + b.threads + ": set PYTORCH_JNI_NUM_THREADS (harness.java_build.java_env)");
      require(b.interopThreads == job.interopThreads, "the job asks interop_threads=" + job.interopThreads
          + " but the bridge runs " + b.interopThreads + ": set PYTORCH_JNI_NUM_INTEROP_THREADS");
      require(b.graphOptimizer == job.graphOptimizer, "the job asks graph_optimizer=" + job.graphOptimizer
          + " but the bridge runs " + b.graphOptimizer + ": set PYTORCH_JNI_GRAPH_OPTIMIZER (harness.java_build.java_env)");
      extra.put("graph_optimizer", b.graphOptimizer);
      extra.put("bridge_path", b.bridgePath);
      extra.put("bridge_load_ns", loadNs);
      return new InForce(b.libtorchVersion, b.libtorchPath, b.threads, b.interopThreads, b.gradMode);
    }

    static Bridge read() {
      Bridge b = new Bridge();
      b.libtorchVersion = property("libtorch_version");
      b.libtorchPath = property("libtorch_path");
      b.bridgePath = System.getProperty("pytorch.jni.bridge_path");
      b.gradMode = property("grad_mode");
      b.graphOptimizer = "1".equals(property("graph_optimizer"));
      b.threads = Integer.parseInt(property("num_threads"));
      b.interopThreads = Integer.parseInt(property("num_interop_threads"));
      return b;
    }

    private static String property(String name) {
      String value = System.getProperty("pytorch.jni." + name);
      if (value == null) {
        throw new Fail("the loaded libpytorch_jni did not report pytorch.jni." + name
            + ": run with -Djava.library.path=<the project's bridge> (harness.java_build.build_bridge)");
      }
      return value;
    }
  }

  /** The main attributes of the runner jar's manifest (written by its pom: runner and artifact versions). */
  static Attributes buildManifest() throws IOException {
    URL self = BenchRuntime.class.getResource("BenchRuntime.class");
    URLConnection connection = self == null ? null : self.openConnection();
    if (!(connection instanceof JarURLConnection jar)) {
      throw new Fail("bench.BenchRuntime was not loaded from the runner jar (" + self + "): run target/runner.jar");
    }
    return jar.getManifest().getMainAttributes();
  }

  /** VmHWM of /proc/self/status in kB, read by the process itself; null where /proc is not readable. */
  static Long peakRssKb() {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/self/status"), StandardCharsets.US_ASCII)) {
        if (line.startsWith("VmHWM:")) {
          return Long.parseLong(line.substring(6).trim().split("\\s+")[0]);
        }
      }
    } catch (IOException | RuntimeException e) {
      return null;
    }
    return null;
  }

  /** Whether a shared library of this file name is mapped into the process (/proc/self/maps; false without /proc). */
  static boolean mapped(String fileName) {
    try (var lines = Files.lines(Path.of("/proc/self/maps"), StandardCharsets.US_ASCII)) {
      return lines.anyMatch(line -> line.endsWith("/" + fileName));
    } catch (IOException | RuntimeException e) {
      return false;
    }
  }

  /** The median of TIMER_OVERHEAD_BLOCKS empty blocks (two clock reads, no work). */
  static long timerOverheadNs() {
    long[] empty = new long[TIMER_OVERHEAD_BLOCKS];
    for (int i = 0; i < empty.length; i++) {
      long t0 = System.nanoTime();
      long t1 = System.nanoTime();
      empty[i] = t1 - t0;
    }
    Arrays.sort(empty);
    return (empty[empty.length / 2 - 1] + empty[empty.length / 2]) / 2;
  }

  /** The exception's type and the first non-empty line of its message. */
  static String oneLine(Throwable t) {
    String message = t.getMessage() == null ? "" : t.getMessage().strip();
    String first = message.isEmpty() ? "(no message)" : message.lines().findFirst().orElse("").strip();
    String line = t.getClass().getSimpleName() + ": " + first;
    return line.length() > 300 ? line.substring(0, 300) : line;
  }

  static void require(boolean condition, String message) {
    if (!condition) {
      throw new Fail(message);
    }
  }

  /**
   * The inputs file must hold input_count x sample_size floats; the first {@code used} of them,
   * memory-mapped (no copy on the heap besides the runner's own arrays), as little-endian bytes.
   */
  private static ByteBuffer mapFloats(Job job, long used) throws IOException {
    long count = (long) job.inputCount * job.sampleSize;
    try (FileChannel channel = FileChannel.open(job.inputs, StandardOpenOption.READ)) {
      long size = channel.size();
      if (size != count * Float.BYTES) {
        throw job.refused("inputs", job.inputs + " holds " + size + " bytes, expected " + count * Float.BYTES
            + " (input_count x sample_size float32)");
      }
      if (used * Float.BYTES > Integer.MAX_VALUE) {
        throw job.refused("inputs", "the inputs used (" + used * Float.BYTES
            + " bytes) exceed 2 GiB: use fewer input samples");
      }
      return channel.map(FileChannel.MapMode.READ_ONLY, 0, used * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
    } catch (NoSuchFileException e) {
      throw job.refused("inputs", job.inputs + " does not exist");
    }
  }

  /**
   * The general case (several tensors, any dtype): the file must end exactly where the last tensor does
   * (rule 10); each tensor's samples of the slots used, memory-mapped, as little-endian bytes.
   */
  private static Inputs mapTensors(Job job) throws IOException {
    try (FileChannel channel = FileChannel.open(job.inputs, StandardOpenOption.READ)) {
      long size = channel.size();
      if (size != job.inputsEnd) {
        throw job.refused("inputs", job.inputs + " holds " + size + " bytes, expected " + job.inputsEnd
            + " (input_tensors end there, rule 10)");
      }
      ByteBuffer[] tensors = new ByteBuffer[job.inputTensors.size()];
      for (int k = 0; k < tensors.length; k++) {
        Job.InputTensor t = job.inputTensors.get(k);
        long used = (long) job.slots * t.callElements(job) * t.elementBytes();
        if (used > Integer.MAX_VALUE) {
          throw job.tensorRefused(k, "the inputs used (" + used + " bytes) exceed 2 GiB: use fewer input samples");
        }
        tensors[k] = channel.map(FileChannel.MapMode.READ_ONLY, t.offset(), used).order(ByteOrder.LITTLE_ENDIAN);
      }
      return new Inputs(null, tensors);
    } catch (NoSuchFileException e) {
      throw job.refused("inputs", job.inputs + " does not exist");
    }
  }

  /** float32 little-endian, in chunks (an output buffer may exceed what one byte[] holds). */
  private static void writeFloats(Path path, float[] values) throws IOException {
    ByteBuffer chunk = ByteBuffer.allocate(Math.min(values.length, WRITE_CHUNK_FLOATS) * Float.BYTES)
        .order(ByteOrder.LITTLE_ENDIAN);
    try (FileChannel channel = FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
        StandardOpenOption.TRUNCATE_EXISTING)) {
      for (int from = 0; from < values.length; from += WRITE_CHUNK_FLOATS) {
        int n = Math.min(WRITE_CHUNK_FLOATS, values.length - from);
        chunk.clear();
        chunk.asFloatBuffer().put(values, from, n);
        chunk.limit(n * Float.BYTES);
        while (chunk.hasRemaining()) {
          channel.write(chunk);
        }
      }
    }
  }

  private static byte[] longsLittleEndian(long[] values) {
    ByteBuffer b = ByteBuffer.allocate(values.length * Long.BYTES).order(ByteOrder.LITTLE_ENDIAN);
    b.asLongBuffer().put(values);
    return b.array();
  }

  /** Written to a sibling .tmp file, then renamed over the target: the result appears whole or not at all. */
  private static void writeAtomically(Path path, String text) throws IOException {
    Path tmp = path.resolveSibling(path.getFileName() + ".tmp");
    Files.writeString(tmp, text, StandardCharsets.UTF_8);
    Files.move(tmp, path, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
  }
}
