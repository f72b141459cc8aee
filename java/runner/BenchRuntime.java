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
 * the inputs, load (timed), warm up (each call timed), the timed loop in {@code bare_rounds} runs alternating
 * with the bare pass, peak RSS, timer overhead, then outputs, timings, warm-up timings and the result JSON
 * last. A runner (its Runner.java, rendered from one small template per variant) supplies only a
 * {@link Model}: how it holds the inputs, loads the model, makes one call and copies its output.
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

  /** What differs between the Java runners; {@code Y} is what one call returns. */
  public interface Model<Y> {
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

    /** One call on batch {@code slot}; with one call per block the clock reads bracket it alone. */
    Y call(int slot);

    /**
     * Copies one call's output ({@code length} = batch x output_size floats) into {@code out} at
     * {@code offset}, in contiguous order; an output of another size is refused with {@link Fail}.
     */
    void copy(Y output, float[] out, int offset, int length);

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

    // 4. Warm-up, each call timed; the first is the first call. Call w uses batch w % slots.
    //    Its output is copied after the clock read, as in the timed loop, so the copy is warm too.
    long[] warmupTimings = new long[job.warmupCalls];
    float[] scratch = new float[outputLength];
    for (int i = 0; i < warmupTimings.length; i++) {
      long t0 = System.nanoTime();
      Y y = model.call(i % slots);
      warmupTimings[i] = System.nanoTime() - t0;
      model.copy(y, scratch, 0, outputLength);
    }

    // 5. Timed loop: the clock is read once per block; call i uses batch and output slot i % slots.
    //    With one call per block the clock reads bracket the call alone and its output is copied
    //    after the second read (a runner with fresh outputs: held, and HELD of them copied together
    //    outside the clock reads); with larger blocks the copy is inside. A runner whose calls write
    //    their own slots is copied from after each run of timed blocks, before its bare pass.
    // 6. Bare pass: the seed's loop over bare_calls calls (bare call i uses batch i % slots), only the
    //    last output kept. The timed blocks run in bare_rounds equal runs, each followed by its share
    //    of the bare pass with one clock read around it, so both see the same machine state.
    float[] outputs = new float[slots * outputLength];
    long[] timings = new long[job.calls / block];
    long[] bareNs = new long[job.bareCalls > 0 ? job.bareRounds : 0];
    int blocksPerRound = timings.length / job.bareRounds;
    int barePerRound = job.bareCalls / job.bareRounds;
    int slot = 0;
    int bareSlot = 0;
    Y last = null;
    boolean fresh = model.freshOutputs();
    boolean inSlots = model.outputsInSlots();
    List<Y> held = new ArrayList<>(HELD);
    int[] heldSlots = new int[HELD];
    for (int r = 0; r < job.bareRounds; r++) {
      int end = (r + 1) * blocksPerRound;
      if (inSlots) {
        int first = slot;
        for (int b = r * blocksPerRound; b < end; b++) {
          long t0 = System.nanoTime();
          for (int j = 0; j < block; j++) {
            model.call(slot);
            if (++slot == slots) {
              slot = 0;
            }
          }
          timings[b] = System.nanoTime() - t0;
        }
        collectRun(model, outputs, first, (long) blocksPerRound * block, slots, outputLength);
      } else if (block == 1 && fresh) {
        for (int b = r * blocksPerRound; b < end; b++) {
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
        for (int b = r * blocksPerRound; b < end; b++) {
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
        for (int b = r * blocksPerRound; b < end; b++) {
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
      if (bareNs.length == 0) {
        continue;
      }
      long t0 = System.nanoTime();
      for (int i = 0; i < barePerRound; i++) {
        last = model.call(bareSlot);
        if (++bareSlot == slots) {
          bareSlot = 0;
        }
      }
      bareNs[r] = System.nanoTime() - t0;
    }
    require(job.bareCalls == 0 || last != null, "the bare pass made no call");

    // 7. Peak memory, read by the process itself after the bare pass.
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
