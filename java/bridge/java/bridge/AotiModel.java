package bridge;

import java.nio.Buffer;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.LongBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Objects;

/**
 * An AOTInductor package (a {@code .pt2} from torch.export + torch._inductor.aoti_compile_and_package),
 * loaded and run through the project's bridge (libpytorch_jni, built against the torch wheel's libtorch)
 * with {@code torch::inductor::AOTIModelPackageLoader}: the org.pytorch API beside it loads TorchScript only.
 *
 * <p>Made for calling one model many times at the lowest cost: {@link #bind} ties one direct buffer per input
 * (each wrapped by its input tensor without a copy, once) and one direct output buffer to the model; each
 * {@link #run} then reads the input buffers as they are at that moment and copies the model's outputs into
 * the output buffer (or, bound with {@code slots}, into the slot {@link #run(int)} names, so that a caller
 * keeping many outputs copies none of them itself): in the package's output order (AOTIModelPackageLoader::run: pytree order), each converted
 * to float32 (bool to 0 or 1) in row-major order, one after the other. Inputs may be float32, float64, int64,
 * int32 or bool ({@link DType}; bool one byte, 0 or 1), all in native byte order; the output buffer is float32
 * in native byte order. The package must be exported for the bound input shapes: AOTInductor reads the buffers
 * without checking their shapes (unless the process runs with AOTI_RUNTIME_CHECK_INPUTS=1), so only outputs of
 * another size are caught. Runs use the bridge's grad mode
 * (PYTORCH_JNI_GRAD_MODE, InferenceMode by default) and its thread settings (PYTORCH_JNI_NUM_THREADS, ...),
 * read once when the library loads. One AotiModel serves one thread at a time; {@link #share} gives another
 * AotiModel over the same loaded package, with its own bound buffers, for another thread, and a package loaded
 * with {@link #load(String, int) several runners} runs that many of them at once (AOTIModelPackageLoader's
 * num_runners; more wait for a free one).
 *
 * <p>Loading the library needs pytorch_java_only on the class path (its JNI_OnLoad looks up org.pytorch's
 * classes). Errors: {@link IllegalArgumentException} for a missing file, a file that is not a loadable
 * package, buffers that are not direct, in another byte order or of another size than the shapes;
 * {@link IllegalStateException} for a closed model, a run before bind and libtorch's own errors in a run;
 * {@link IndexOutOfBoundsException} for a slot the output buffer was not bound with.
 */
public final class AotiModel implements AutoCloseable {
  static {
    System.loadLibrary("pytorch_jni");
  }

  /** An input's element type; {@code code} is the native side's (aoti_jni.cpp). */
  public enum DType {
    FLOAT32(1, 4), FLOAT64(2, 8), INT64(3, 8), INT32(4, 4), BOOL(5, 1);

    final int code;
    /** Bytes per element. */
    public final int bytes;

    DType(int code, int bytes) {
      this.code = code;
      this.bytes = bytes;
    }
  }

  private final String path;
  private long handle;
  private boolean bound;
  private int slots;

  private AotiModel(String path, long handle) {
    this.path = path;
    this.handle = handle;
  }

  /** Loads the package at {@code path} (its shared library is extracted and opened: seconds, not calls). */
  public static AotiModel load(String path) {
    return load(path, 1);
  }

  /**
   * Loads the package at {@code path} with {@code runners} model instances over its one set of weights, so that
   * as many runs (of this AotiModel and those {@link #share} gives, each on its own thread) proceed at once.
   */
  public static AotiModel load(String path, int runners) {
    Objects.requireNonNull(path, "path");
    if (runners < 1) {
      throw new IllegalArgumentException("runners is " + runners + ": give at least 1");
    }
    if (!Files.isRegularFile(Path.of(path))) {
      throw new IllegalArgumentException("no AOTInductor package at " + path
          + ": export one with torch.export.export and torch._inductor.aoti_compile_and_package");
    }
    return new AotiModel(path, nativeLoad(path, runners));
  }

  /**
   * Another AotiModel over this one's loaded package, unbound: bind it to buffers of its own and run it on
   * another thread. The package stays loaded until the last AotiModel over it is closed.
   */
  public AotiModel share() {
    return new AotiModel(path, nativeShare(open()));
  }

  /**
   * Binds the buffers every later {@link #run} reads and writes: {@code input} holds exactly the floats of
   * {@code inputShape} (the shape the package was exported for), {@code output} exactly the model's output.
   */
  public void bind(FloatBuffer input, long[] inputShape, FloatBuffer output) {
    bind(input, inputShape, output, 1);
  }

  /** As {@link #bind(FloatBuffer, long[], FloatBuffer)}, with {@code output} holding {@code slots} outputs. */
  public void bind(FloatBuffer input, long[] inputShape, FloatBuffer output, int slots) {
    Objects.requireNonNull(input, "input");
    Objects.requireNonNull(inputShape, "inputShape");
    bind(new Buffer[] {input}, new long[][] {inputShape}, new DType[] {DType.FLOAT32}, output, slots);
  }

  /**
   * Binds one direct buffer per input, in the model's argument order: {@code inputs[k]} holds exactly the
   * elements of {@code shapes[k]} in {@code dtypes[k]} (any Buffer type, e.g. a ByteBuffer or a view of one, in
   * native byte order; bool as one byte per element), and {@code output} exactly the float32 values of all the
   * model's outputs together.
   */
  public void bind(Buffer[] inputs, long[][] shapes, DType[] dtypes, FloatBuffer output) {
    bind(inputs, shapes, dtypes, output, 1);
  }

  /**
   * As {@link #bind(Buffer[], long[][], DType[], FloatBuffer)}, with {@code output} holding {@code slots}
   * outputs one after the other (its capacity a multiple of {@code slots}): {@link #run(int) run(slot)} writes
   * into floats {@code [slot * n, (slot + 1) * n)}, n = capacity / slots.
   */
  public void bind(Buffer[] inputs, long[][] shapes, DType[] dtypes, FloatBuffer output, int slots) {
    Objects.requireNonNull(inputs, "inputs");
    Objects.requireNonNull(shapes, "shapes");
    Objects.requireNonNull(dtypes, "dtypes");
    Objects.requireNonNull(output, "output");
    if (shapes.length != inputs.length || dtypes.length != inputs.length) {
      throw new IllegalArgumentException(inputs.length + " input buffers, " + shapes.length + " shapes and "
          + dtypes.length + " dtypes: give one of each per input");
    }
    int[] codes = new int[inputs.length];
    long[][] copies = new long[inputs.length][];
    for (int k = 0; k < inputs.length; k++) {
      String which = inputs.length == 1 ? "the input" : "input " + k;
      Objects.requireNonNull(inputs[k], which + " buffer");
      Objects.requireNonNull(shapes[k], which + " shape");
      Objects.requireNonNull(dtypes[k], which + " dtype");
      checkBuffer(inputs[k], which + " buffer", dtypes[k].bytes > 1);
      long elements = 1;
      for (long d : shapes[k]) {
        if (d < 0) {
          throw new IllegalArgumentException(which.replace("the input", "input") + " shape "
              + Arrays.toString(shapes[k]) + " has a negative size");
        }
        elements *= d;
      }
      long bytes = (long) inputs[k].capacity() * elementBytes(inputs[k]);
      if (elements * dtypes[k].bytes != bytes) {
        String unit = dtypes[k] == DType.FLOAT32 ? " floats" : " " + dtypes[k].name().toLowerCase() + " elements";
        throw new IllegalArgumentException(which + " shape holds " + elements + unit + ", the " + which.replace(
            "the ", "") + " buffer " + bytes / dtypes[k].bytes);
      }
      codes[k] = dtypes[k].code;
      copies[k] = shapes[k].clone();
    }
    checkBuffer(output, "the output buffer", true);
    if (slots < 1 || output.capacity() % slots != 0) {
      throw new IllegalArgumentException("the output buffer's " + output.capacity() + " floats do not split into "
          + slots + " slots: give it slots x the model's output floats");
    }
    nativeBind(open(), inputs.clone(), copies, codes, output, slots);
    this.slots = slots;
    bound = true;
  }

  private static void checkBuffer(Buffer b, String which, boolean ordered) {
    if (!b.isDirect()) {
      throw new IllegalArgumentException(which + " is not direct: allocate it with "
          + "ByteBuffer.allocateDirect(n * 4).order(ByteOrder.nativeOrder()).asFloatBuffer()");
    }
    ByteOrder order = order(b);
    if (ordered && order != ByteOrder.nativeOrder()) {
      throw new IllegalArgumentException(which + " is " + order + ", not the native byte order "
          + ByteOrder.nativeOrder());
    }
  }

  private static ByteOrder order(Buffer b) {
    if (b instanceof ByteBuffer x) {
      return x.order();
    }
    if (b instanceof FloatBuffer x) {
      return x.order();
    }
    if (b instanceof DoubleBuffer x) {
      return x.order();
    }
    if (b instanceof LongBuffer x) {
      return x.order();
    }
    if (b instanceof IntBuffer x) {
      return x.order();
    }
    throw new IllegalArgumentException(b.getClass().getName() + ": use a ByteBuffer, FloatBuffer, DoubleBuffer, "
        + "LongBuffer or IntBuffer");
  }

  /** Bytes per element of the buffer's own type (its capacity counts those). */
  private static int elementBytes(Buffer b) {
    return b instanceof ByteBuffer ? 1 : b instanceof DoubleBuffer || b instanceof LongBuffer ? 8 : 4;
  }

  /** One call: the bound input buffers through the model, its outputs copied into the bound output buffer. */
  public void run() {
    run(0);
  }

  /** One call, its outputs copied into slot {@code slot} of the output buffer (bound with that many slots). */
  public void run(int slot) {
    if (!bound) {
      throw new IllegalStateException("AotiModel " + path + ": bind the buffers before run");
    }
    if (slot < 0 || slot >= slots) {
      throw new IndexOutOfBoundsException("slot " + slot + " of an output buffer bound with " + slots + " slots");
    }
    nativeRun(open(), slot);
  }

  /** The file it was loaded from. */
  public String path() {
    return path;
  }

  /** Frees the loader and its extracted files; later calls throw IllegalStateException. */
  @Override
  public synchronized void close() {
    if (handle != 0) {
      nativeFree(handle);
      handle = 0;
    }
  }

  private long open() {
    if (handle == 0) {
      throw new IllegalStateException("AotiModel " + path + " is closed");
    }
    return handle;
  }

  private static native long nativeLoad(String path, int runners);

  private static native long nativeShare(long handle);

  private static native void nativeBind(long handle, Buffer[] inputs, long[][] shapes, int[] dtypes,
      FloatBuffer output, int slots);

  private static native void nativeRun(long handle, int slot);

  private static native void nativeFree(long handle);
}
