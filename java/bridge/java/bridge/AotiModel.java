package bridge;

import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Objects;

/**
 * An AOTInductor package (a {@code .pt2} from torch.export + torch._inductor.aoti_compile_and_package),
 * loaded and run through the project's bridge (libpytorch_jni, built against the torch wheel's libtorch)
 * with {@code torch::inductor::AOTIModelPackageLoader}: the org.pytorch API beside it loads TorchScript only.
 *
 * <p>Made for calling one model many times at the lowest cost: {@link #bind} ties one direct input buffer
 * (wrapped by the input tensor without a copy, once) and one direct output buffer to the model; each
 * {@link #run} then reads the input buffer as it is at that moment and copies the model's one output into
 * the output buffer. Both buffers are float32 in native byte order. The package must be exported for the
 * bound input shape: AOTInductor reads the buffer without checking its shape (unless the process runs with
 * AOTI_RUNTIME_CHECK_INPUTS=1), so only an output of another size is caught. Runs use the bridge's grad mode
 * (PYTORCH_JNI_GRAD_MODE, InferenceMode by default) and its thread settings (PYTORCH_JNI_NUM_THREADS, ...),
 * read once when the library loads. Not thread-safe: one caller at a time.
 *
 * <p>Loading the library needs pytorch_java_only on the class path (its JNI_OnLoad looks up org.pytorch's
 * classes). Errors: {@link IllegalArgumentException} for a missing file, a file that is not a loadable
 * package, buffers that are not direct, in another byte order or of another size than the shapes;
 * {@link IllegalStateException} for a closed model, a run before bind and libtorch's own errors in a run.
 */
public final class AotiModel implements AutoCloseable {
  static {
    System.loadLibrary("pytorch_jni");
  }

  private final String path;
  private long handle;
  private boolean bound;

  private AotiModel(String path, long handle) {
    this.path = path;
    this.handle = handle;
  }

  /** Loads the package at {@code path} (its shared library is extracted and opened: seconds, not calls). */
  public static AotiModel load(String path) {
    Objects.requireNonNull(path, "path");
    if (!Files.isRegularFile(Path.of(path))) {
      throw new IllegalArgumentException("no AOTInductor package at " + path
          + ": export one with torch.export.export and torch._inductor.aoti_compile_and_package");
    }
    return new AotiModel(path, nativeLoad(path));
  }

  /**
   * Binds the buffers every later {@link #run} reads and writes: {@code input} holds exactly the floats of
   * {@code inputShape} (the shape the package was exported for), {@code output} exactly the model's output.
   */
  public void bind(FloatBuffer input, long[] inputShape, FloatBuffer output) {
    Objects.requireNonNull(input, "input");
    Objects.requireNonNull(inputShape, "inputShape");
    Objects.requireNonNull(output, "output");
    for (FloatBuffer b : new FloatBuffer[] {input, output}) {
      String which = b == input ? "the input buffer" : "the output buffer";
      if (!b.isDirect()) {
        throw new IllegalArgumentException(which + " is not direct: allocate it with "
            + "ByteBuffer.allocateDirect(n * 4).order(ByteOrder.nativeOrder()).asFloatBuffer()");
      }
      if (b.order() != ByteOrder.nativeOrder()) {
        throw new IllegalArgumentException(which + " is " + b.order() + ", not the native byte order "
            + ByteOrder.nativeOrder());
      }
    }
    for (long d : inputShape) {
      if (d < 0) {
        throw new IllegalArgumentException("input shape " + Arrays.toString(inputShape) + " has a negative size");
      }
    }
    nativeBind(open(), input, inputShape.clone(), output);
    bound = true;
  }

  /** One call: the bound input buffer through the model, its output copied into the bound output buffer. */
  public void run() {
    if (!bound) {
      throw new IllegalStateException("AotiModel " + path + ": bind the buffers before run");
    }
    nativeRun(open());
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

  private static native long nativeLoad(String path);

  private static native void nativeBind(long handle, FloatBuffer input, long[] inputShape, FloatBuffer output);

  private static native void nativeRun(long handle);

  private static native void nativeFree(long handle);
}
