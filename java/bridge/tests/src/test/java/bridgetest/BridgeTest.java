package bridgetest;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.Field;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.pytorch.DType;
import org.pytorch.Device;
import org.pytorch.IValue;
import org.pytorch.MemoryFormat;
import org.pytorch.Module;
import org.pytorch.Tensor;

/** The bridge (libpytorch_jni.so + libfbjni.so) behind the unmodified pytorch_java_only jar. */
class BridgeTest {
  private static Path fixtures;
  private static Module identity;
  private static Module times2;
  private static Module layout;
  private static Module values;

  @BeforeAll
  static void loadFixtures() {
    Assumptions.assumeTrue(
        System.getProperty("expect.load.failure", "").isEmpty(),
        "bad-configuration run: only BadConfigTest applies");
    String dir = System.getProperty("fixtures.dir");
    assertNotNull(dir, "run with -Dfixtures.dir=<output of make_fixtures.py>");
    fixtures = Path.of(dir);
    assertTrue(Files.isDirectory(fixtures), "fixtures.dir does not exist: " + fixtures);
    identity = load("identity.pt");
    times2 = load("times2.pt");
    layout = load("layout.pt");
    values = load("values.pt");
  }

  private static Module load(String name) {
    return Module.load(fixtures.resolve(name).toString());
  }

  private static Tensor id(Tensor t) {
    return identity.forward(IValue.from(t)).toTensor();
  }

  private static Tensor doubled(Tensor t) {
    return times2.forward(IValue.from(t)).toTensor();
  }

  // ---- inputs are read in place, outputs are new ----

  @Test
  void reusedInputTensorIsReadInPlaceAndOutputsAreFresh() {
    // The bridge reads the input tensor's fields directly (no getters): one Tensor over one
    // direct buffer, refilled between calls, must be seen as refilled, and each output must
    // own its own buffer.
    FloatBuffer buffer = Tensor.allocateFloatBuffer(2);
    Tensor input = Tensor.fromBlob(buffer, new long[] {2});
    buffer.put(0, 1f).put(1, 2f);
    Tensor first = doubled(input);
    buffer.put(0, 3f).put(1, -4f);
    Tensor second = doubled(input);
    assertArrayEquals(new float[] {2f, 4f}, first.getDataAsFloatArray());
    assertArrayEquals(new float[] {6f, -8f}, second.getDataAsFloatArray());
    assertArrayEquals(new float[] {3f, -4f}, id(input).getDataAsFloatArray());
    for (int i = 1; i <= 10_000; i++) {
      buffer.put(0, i).put(1, -i);
      assertArrayEquals(new float[] {2f * i, -2f * i}, doubled(input).getDataAsFloatArray());
    }
  }

  // ---- dtypes, both ways ----

  @Test
  void uint8RoundTrips() {
    Tensor t = Tensor.fromBlobUnsigned(new byte[] {0, 1, 100, (byte) 200}, new long[] {2, 2});
    Tensor same = id(t);
    assertEquals(DType.UINT8, same.dtype());
    assertArrayEquals(new long[] {2, 2}, same.shape());
    assertArrayEquals(new byte[] {0, 1, 100, (byte) 200}, same.getDataAsUnsignedByteArray());
    assertArrayEquals(new byte[] {0, 2, (byte) 200, (byte) 144}, doubled(t).getDataAsUnsignedByteArray());
  }

  @Test
  void aBoolOutputComesBackAsUint8ZeroOrOne() { // org.pytorch.DType has no bool
    Tensor t = values.runMethod("bool_tensor", IValue.from(Tensor.fromBlob(new float[] {1, -1, 3}, new long[] {3})))
        .toTensor();
    assertEquals(DType.UINT8, t.dtype());
    assertArrayEquals(new long[] {3}, t.shape());
    assertArrayEquals(new byte[] {1, 0, 1}, t.getDataAsUnsignedByteArray());
  }

  @Test
  void int8RoundTrips() {
    Tensor t = Tensor.fromBlob(new byte[] {-3, 0, 5, 60}, new long[] {4});
    assertEquals(DType.INT8, id(t).dtype());
    assertArrayEquals(new byte[] {-3, 0, 5, 60}, id(t).getDataAsByteArray());
    assertArrayEquals(new byte[] {-6, 0, 10, 120}, doubled(t).getDataAsByteArray());
  }

  @Test
  void int32RoundTrips() {
    int[] data = {-70000, 1, 2, Integer.MAX_VALUE / 4};
    Tensor t = Tensor.fromBlob(data, new long[] {1, 4});
    assertEquals(DType.INT32, id(t).dtype());
    assertArrayEquals(new long[] {1, 4}, id(t).shape());
    assertArrayEquals(data, id(t).getDataAsIntArray());
    assertArrayEquals(new int[] {-140000, 2, 4, Integer.MAX_VALUE / 4 * 2}, doubled(t).getDataAsIntArray());
  }

  @Test
  void float32RoundTrips() {
    float[] data = {1.5f, -2.25f, 0f, 3e-3f, 1e30f, -7f};
    Tensor t = Tensor.fromBlob(data, new long[] {2, 3});
    assertEquals(DType.FLOAT32, id(t).dtype());
    assertArrayEquals(new long[] {2, 3}, id(t).shape());
    assertArrayEquals(data, id(t).getDataAsFloatArray());
    assertArrayEquals(new float[] {3f, -4.5f, 0f, 6e-3f, 2e30f, -14f}, doubled(t).getDataAsFloatArray());
  }

  @Test
  void int64RoundTrips() {
    long[] data = {Long.MIN_VALUE / 4, -1, 0, 1L << 40};
    Tensor t = Tensor.fromBlob(data, new long[] {4});
    assertEquals(DType.INT64, id(t).dtype());
    assertArrayEquals(data, id(t).getDataAsLongArray());
    assertArrayEquals(new long[] {Long.MIN_VALUE / 2, -2, 0, 1L << 41}, doubled(t).getDataAsLongArray());
  }

  @Test
  void float64RoundTrips() {
    double[] data = {Math.PI, -1e300, 0.5, 2.0};
    Tensor t = Tensor.fromBlob(data, new long[] {2, 2});
    assertEquals(DType.FLOAT64, id(t).dtype());
    assertArrayEquals(data, id(t).getDataAsDoubleArray());
    assertArrayEquals(new double[] {2 * Math.PI, -2e300, 1.0, 4.0}, doubled(t).getDataAsDoubleArray());
  }

  @Test
  void scalarEmptyAndLargeTensors() {
    Tensor scalar = id(Tensor.fromBlob(new float[] {5f}, new long[] {}));
    assertArrayEquals(new long[] {}, scalar.shape());
    assertArrayEquals(new float[] {5f}, scalar.getDataAsFloatArray());

    Tensor empty = id(Tensor.fromBlob(new float[0], new long[] {0, 3}));
    assertArrayEquals(new long[] {0, 3}, empty.shape());
    assertEquals(0, empty.getDataAsFloatArray().length);

    float[] big = new float[100_000];
    for (int i = 0; i < big.length; i++) {
      big[i] = i * 0.5f;
    }
    float[] out = doubled(Tensor.fromBlob(big, new long[] {100, 1000})).getDataAsFloatArray();
    for (int i = 0; i < big.length; i++) {
      assertEquals(i * 1.0f, out[i]);
    }
  }

  @Test
  void reusedInputBufferSeesRefills() {
    FloatBuffer buffer = Tensor.allocateFloatBuffer(2);
    Tensor t = Tensor.fromBlob(buffer, new long[] {2});
    for (int i = 1; i <= 100; i++) {
      buffer.put(0, i).put(1, -i);
      assertArrayEquals(new float[] {2f * i, -2f * i}, doubled(t).getDataAsFloatArray());
    }
  }

  // ---- memory formats ----

  @Test
  void channelsLastInput() {
    int c = 3, h = 2, w = 4;
    float[] nhwc = new float[c * h * w];
    for (int y = 0; y < h; y++) {
      for (int x = 0; x < w; x++) {
        for (int k = 0; k < c; k++) {
          nhwc[(y * w + x) * c + k] = 100 * k + 10 * y + x;
        }
      }
    }
    Tensor t = Tensor.fromBlob(nhwc, new long[] {1, c, h, w}, MemoryFormat.CHANNELS_LAST);
    IValue[] out = layout.forward(IValue.from(t)).toTuple();
    assertTrue(out[0].toBool(), "the module must see a channels-last tensor");
    Tensor nchw = out[2].toTensor();
    assertEquals(MemoryFormat.CONTIGUOUS, nchw.memoryFormat());
    assertArrayEquals(new long[] {1, c, h, w}, nchw.shape());
    float[] data = nchw.getDataAsFloatArray();
    int i = 0;
    for (int k = 0; k < c; k++) {
      for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
          assertEquals(100 * k + 10 * y + x, data[i++]);
        }
      }
    }
    // Back out unchanged: the bridge keeps the channels-last layout of an output.
    Tensor same = id(t);
    assertEquals(MemoryFormat.CHANNELS_LAST, same.memoryFormat());
    assertArrayEquals(nhwc, same.getDataAsFloatArray());
  }

  @Test
  void channelsLastOutput() {
    float[] nchw = new float[2 * 3 * 2];
    for (int i = 0; i < nchw.length; i++) {
      nchw[i] = i;
    }
    Tensor in = Tensor.fromBlob(nchw, new long[] {1, 2, 3, 2});
    Tensor cl = layout.runMethod("to_channels_last", IValue.from(in)).toTensor();
    assertEquals(MemoryFormat.CHANNELS_LAST, cl.memoryFormat());
    assertArrayEquals(new long[] {1, 2, 3, 2}, cl.shape());
    // NHWC order of an NCHW arange: (h, w, c) -> c * 6 + h * 2 + w
    float[] expected = new float[12];
    int i = 0;
    for (int y = 0; y < 3; y++) {
      for (int x = 0; x < 2; x++) {
        for (int k = 0; k < 2; k++) {
          expected[i++] = k * 6 + y * 2 + x;
        }
      }
    }
    assertArrayEquals(expected, cl.getDataAsFloatArray());
  }

  @Test
  void channelsLast3d() {
    float[] ndhwc = new float[2 * 2 * 2 * 3];
    for (int i = 0; i < ndhwc.length; i++) {
      ndhwc[i] = i;
    }
    Tensor t = Tensor.fromBlob(ndhwc, new long[] {1, 3, 2, 2, 2}, MemoryFormat.CHANNELS_LAST_3D);
    IValue[] out = layout.forward(IValue.from(t)).toTuple();
    assertFalse(out[0].toBool());
    assertTrue(out[1].toBool(), "the module must see a channels-last-3d tensor");
    float[] ncdhw = out[2].toTensor().getDataAsFloatArray();
    // element (c, d, h, w) sits at ((d * 2 + h) * 2 + w) * 3 + c in the input
    assertEquals(ndhwc[((1 * 2 + 0) * 2 + 1) * 3 + 2], ncdhw[((2 * 2 + 1) * 2 + 0) * 2 + 1]);
    Tensor same = id(t);
    assertEquals(MemoryFormat.CHANNELS_LAST_3D, same.memoryFormat());
    assertArrayEquals(ndhwc, same.getDataAsFloatArray());
    Tensor made = layout.runMethod("to_channels_last_3d",
        IValue.from(Tensor.fromBlob(new float[24], new long[] {1, 3, 2, 2, 2}))).toTensor();
    assertEquals(MemoryFormat.CHANNELS_LAST_3D, made.memoryFormat());
  }

  @Test
  void nonContiguousOutputIsCopiedContiguous() {
    Tensor t = Tensor.fromBlob(new float[] {1, 2, 3, 4, 5, 6}, new long[] {2, 3});
    Tensor out = layout.runMethod("transposed", IValue.from(t)).toTensor();
    assertArrayEquals(new long[] {3, 2}, out.shape());
    assertEquals(MemoryFormat.CONTIGUOUS, out.memoryFormat());
    assertArrayEquals(new float[] {1, 4, 2, 5, 3, 6}, out.getDataAsFloatArray());
  }

  @Test
  void channelsLastWithWrongRankIsRejected() {
    Tensor t = Tensor.fromBlob(new float[4], new long[] {4}, MemoryFormat.CHANNELS_LAST);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> id(t));
    assertTrue(e.getMessage().contains("CHANNELS_LAST"), e.getMessage());
  }

  // ---- tuples, lists, dicts, strings, scalars ----

  @Test
  void tupleOutput() {
    IValue[] out = values.forward(IValue.from(Tensor.fromBlob(new float[] {1, 2}, new long[] {2}))).toTuple();
    assertEquals(6, out.length);
    assertArrayEquals(new float[] {2, 3}, out[0].toTensor().getDataAsFloatArray());
    assertEquals(7L, out[1].toLong());
    assertEquals(2.5, out[2].toDouble());
    assertEquals("tuple", out[3].toStr());
    assertTrue(out[4].toBool());
    assertTrue(out[5].isNull());
  }

  @Test
  void tupleInput() {
    IValue pair = IValue.tupleFrom(IValue.from(Tensor.fromBlob(new long[] {1, 2, 3}, new long[] {3})), IValue.from(3L));
    assertArrayEquals(new long[] {3, 6, 9}, values.runMethod("tuple_in", pair).toTensor().getDataAsLongArray());
  }

  @Test
  void scalarsAndStringsBothWays() {
    String text = "h\u00e9llo \uD83D\uDE00 \u2713";
    IValue[] out = values.runMethod("scalars",
        IValue.from(true), IValue.from(41L), IValue.from(1.25), IValue.from(text)).toTuple();
    assertFalse(out[0].toBool());
    assertEquals(42L, out[1].toLong());
    assertEquals(2.5, out[2].toDouble());
    assertEquals(text + "!", out[3].toStr());
  }

  @Test
  void optionalNone() {
    assertTrue(values.runMethod("optional", IValue.optionalNull()).isNull());
    Tensor t = Tensor.fromBlob(new double[] {1.5}, new long[] {1});
    assertArrayEquals(new double[] {3.0}, values.runMethod("optional", IValue.from(t)).toTensor().getDataAsDoubleArray());
  }

  @Test
  void severalArguments() {
    Tensor a = Tensor.fromBlob(new float[] {1, 2}, new long[] {2});
    Tensor b = Tensor.fromBlob(new float[] {10, 20}, new long[] {2});
    assertArrayEquals(new float[] {11, 22},
        values.runMethod("add", IValue.from(a), IValue.from(b)).toTensor().getDataAsFloatArray());
  }

  @Test
  void primitiveLists() {
    assertArrayEquals(new boolean[] {false, true, false},
        values.runMethod("bool_list", IValue.listFrom(true, false, true)).toBoolList());
    assertArrayEquals(new long[] {2, -4, Long.MIN_VALUE + 1},
        values.runMethod("long_list", IValue.listFrom(1L, -5L, Long.MIN_VALUE)).toLongList());
    assertArrayEquals(new double[] {1.0, -0.5},
        values.runMethod("double_list", IValue.listFrom(0.5, -0.25)).toDoubleList());
    assertEquals(0, values.runMethod("long_list", IValue.listFrom(new long[0])).toLongList().length);
  }

  @Test
  void tensorList() {
    Tensor f = Tensor.fromBlob(new float[] {1, 2}, new long[] {2});
    Tensor l = Tensor.fromBlob(new long[] {3}, new long[] {1});
    Tensor[] out = values.runMethod("tensor_list", IValue.listFrom(f, l)).toTensorList();
    assertEquals(2, out.length);
    assertArrayEquals(new float[] {2, 4}, out[0].getDataAsFloatArray());
    assertArrayEquals(new long[] {6}, out[1].getDataAsLongArray());
  }

  @Test
  void longListsReleaseTheirLocalReferences() {
    int n = 5000;
    Tensor[] many = new Tensor[n];
    for (int i = 0; i < n; i++) {
      many[i] = Tensor.fromBlob(new float[] {i}, new long[] {1});
    }
    Tensor[] out = values.runMethod("tensor_list", IValue.listFrom(many)).toTensorList();
    assertEquals(n, out.length);
    assertEquals(2f * (n - 1), out[n - 1].getDataAsFloatArray()[0]);
    IValue[] pairs = values.runMethod("pairs", IValue.from((long) n)).toList();
    assertEquals(n, pairs.length);
    assertEquals("4999", pairs[n - 1].toTuple()[1].toStr());
  }

  @Test
  void genericLists() {
    IValue nested = IValue.listFrom(IValue.listFrom(1L, 2L), IValue.listFrom(3L));
    IValue[] rows = values.runMethod("nested", nested).toList();
    assertEquals(2, rows.length);
    assertArrayEquals(new long[] {10, 20}, rows[0].toLongList());
    assertArrayEquals(new long[] {30}, rows[1].toLongList());
    IValue[] pairs = values.runMethod("pairs", IValue.from(3L)).toList();
    assertEquals(3, pairs.length);
    assertEquals(2L, pairs[2].toTuple()[0].toLong());
    assertEquals("2", pairs[2].toTuple()[1].toStr());
  }

  @Test
  void dictWithStringKeys() {
    Map<String, IValue> in = new LinkedHashMap<>();
    in.put("a", IValue.from(Tensor.fromBlob(new float[] {1}, new long[] {1})));
    in.put("\u00fc", IValue.from(Tensor.fromBlob(new float[] {2, 3}, new long[] {2})));
    Map<String, IValue> out = values.runMethod("dict_str", IValue.dictStringKeyFrom(in)).toDictStringKey();
    assertEquals(2, out.size());
    assertArrayEquals(new float[] {2}, out.get("a_out").toTensor().getDataAsFloatArray());
    assertArrayEquals(new float[] {4, 6}, out.get("\u00fc_out").toTensor().getDataAsFloatArray());
  }

  @Test
  void dictWithLongKeys() {
    Map<Long, IValue> in = new HashMap<>();
    in.put(1L, IValue.from(0.5));
    in.put(-2L, IValue.from(2.0));
    Map<Long, IValue> out = values.runMethod("dict_long", IValue.dictLongKeyFrom(in)).toDictLongKey();
    assertEquals(2, out.size());
    assertEquals(1.5, out.get(10L).toDouble());
    assertEquals(3.0, out.get(-20L).toDouble());
  }

  // ---- loading, methods, lifetime ----

  @Test
  void extraFilesAreFilledBack() {
    Map<String, String> extra = new HashMap<>();
    extra.put("meta.txt", "");
    extra.put("absent.txt", "");
    Module m = Module.load(fixtures.resolve("extra.pt").toString(), extra, Device.CPU);
    assertEquals("hello from the fixture \u2713", extra.get("meta.txt"));
    assertEquals("", extra.get("absent.txt"));
    assertArrayEquals(new float[] {1}, m.forward(IValue.from(Tensor.fromBlob(new float[] {1}, new long[] {1})))
        .toTensor().getDataAsFloatArray());
    m.destroy();
  }

  @Test
  void runMethodUnknownNameThrows() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> values.runMethod("no_such_method"));
    assertTrue(e.getMessage().contains("no_such_method"), e.getMessage());
  }

  @Test
  void destroyThenForwardThrowsNullPointerException() {
    Module m = load("times2.pt");
    IValue x = IValue.from(Tensor.fromBlob(new float[] {1}, new long[] {1}));
    assertArrayEquals(new float[] {2}, m.forward(x).toTensor().getDataAsFloatArray());
    m.destroy();
    assertThrows(NullPointerException.class, () -> m.forward(x));
    assertThrows(NullPointerException.class, () -> m.runMethod("forward", x));
    m.destroy(); // deleteNative(0): nothing to free, no crash
  }

  @Test
  void manyLoadsAreFreedByTheDestructorThread() throws Exception {
    for (int i = 0; i < 50; i++) {
      load("identity.pt");
    }
    System.gc();
    Thread.sleep(100);
    assertArrayEquals(new float[] {4}, id(Tensor.fromBlob(new float[] {4}, new long[] {1})).getDataAsFloatArray());
  }

  // ---- errors become Java exceptions ----

  @Test
  void missingModelFileThrows() {
    String path = fixtures.resolve("does-not-exist.pt").toString();
    RuntimeException e = assertThrows(RuntimeException.class, () -> Module.load(path));
    assertTrue(e.getMessage().contains("does-not-exist.pt"), e.getMessage());
  }

  @Test
  void nonCpuDeviceThrowsIllegalArgumentException() {
    String path = fixtures.resolve("identity.pt").toString();
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> Module.load(path, null, Device.VULKAN));
    assertTrue(e.getMessage().contains("CPU"), e.getMessage());
  }

  @Test
  void outputsPassBackInAsInputs() {
    // Outputs are heap buffers over Java arrays (tensor_to_java): passed back in, they are copied.
    Tensor once = doubled(Tensor.fromBlob(new float[] {1, -2}, new long[] {2}));
    Tensor twice = doubled(once);
    assertArrayEquals(new float[] {4, -8}, twice.getDataAsFloatArray());
    assertArrayEquals(new float[] {2, -4}, once.getDataAsFloatArray(), "the input is not changed");
    Tensor longs = doubled(doubled(Tensor.fromBlob(new long[] {3, 1L << 40}, new long[] {1, 2})));
    assertArrayEquals(new long[] {1, 2}, longs.shape());
    assertArrayEquals(new long[] {12, 1L << 42}, longs.getDataAsLongArray());
    assertArrayEquals(new byte[] {4, (byte) 200},
        doubled(doubled(Tensor.fromBlobUnsigned(new byte[] {1, 50}, new long[] {2}))).getDataAsUnsignedByteArray());
    float[] nhwc = new float[12];
    for (int i = 0; i < nhwc.length; i++) {
      nhwc[i] = i;
    }
    Tensor cl = id(id(Tensor.fromBlob(nhwc, new long[] {1, 3, 2, 2}, MemoryFormat.CHANNELS_LAST)));
    assertEquals(MemoryFormat.CHANNELS_LAST, cl.memoryFormat());
    assertArrayEquals(nhwc, cl.getDataAsFloatArray());
    assertArrayEquals(new float[0], id(id(Tensor.fromBlob(new float[0], new long[] {0, 3}))).getDataAsFloatArray());
  }

  @Test
  void bufferNeitherDirectNorArrayBackedThrowsIllegalArgumentException() throws Exception {
    // Tensor.fromBlob only makes direct buffers: swap in a view of a heap buffer, which has no array of its own.
    Tensor t = Tensor.fromBlob(new float[] {1, 2}, new long[] {2});
    Field data = t.getClass().getDeclaredField("data");
    data.setAccessible(true);
    data.set(t, ByteBuffer.allocate(8).order(ByteOrder.nativeOrder()).asFloatBuffer());
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> id(t));
    assertTrue(e.getMessage().contains("neither direct nor backed by an array"), e.getMessage());
    data.set(t, FloatBuffer.wrap(new float[] {5, 6, 7}));
    IllegalArgumentException size = assertThrows(IllegalArgumentException.class, () -> id(t));
    assertTrue(size.getMessage().contains("holds 3"), size.getMessage());
    data.set(t, FloatBuffer.wrap(new float[] {5, 6}));
    assertArrayEquals(new float[] {5, 6}, id(t).getDataAsFloatArray());
  }

  @Test
  void shapeNotMatchingBufferThrowsIllegalArgumentException() throws Exception {
    Tensor t = Tensor.fromBlob(new float[] {1, 2}, new long[] {2});
    Field shape = Tensor.class.getDeclaredField("shape");
    shape.setAccessible(true);
    ((long[]) shape.get(t))[0] = 3;
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> id(t));
    assertTrue(e.getMessage().contains("3 elements"), e.getMessage());
  }

  @Test
  void nullArgumentThrowsNullPointerException() {
    assertThrows(NullPointerException.class, () -> identity.forward((IValue) null));
  }

  @Test
  void wrongArgumentTypeAndScriptErrorsThrowRuntimeException() {
    RuntimeException wrongType = assertThrows(RuntimeException.class, () -> identity.forward(IValue.from("text")));
    assertNotNull(wrongType.getMessage());
    RuntimeException raised = assertThrows(RuntimeException.class, () -> values.runMethod("fail", IValue.from("boom 42")));
    assertTrue(raised.getMessage().contains("boom 42"), raised.getMessage());
    IllegalArgumentException dtype = assertThrows(IllegalArgumentException.class,
        () -> values.runMethod("half_tensor", IValue.from(Tensor.fromBlob(new float[] {1, -1}, new long[] {2}))));
    assertTrue(dtype.getMessage().contains("Half"), dtype.getMessage());
    // the module still works afterwards
    assertArrayEquals(new float[] {1}, id(Tensor.fromBlob(new float[] {1}, new long[] {1})).getDataAsFloatArray());
  }

  // ---- configuration reported back through system properties ----

  private static String envOr(String name, String fallback) {
    String v = System.getenv(name);
    return v == null || v.isEmpty() ? fallback : v;
  }

  @Test
  void configurationIsReported() {
    String mode = envOr("PYTORCH_JNI_GRAD_MODE", "inference");
    assertEquals(mode, System.getProperty("pytorch.jni.grad_mode"));
    assertEquals(envOr("PYTORCH_JNI_GRAPH_OPTIMIZER", "0"), System.getProperty("pytorch.jni.graph_optimizer"));
    int threads = Integer.parseInt(System.getProperty("pytorch.jni.num_threads"));
    int interop = Integer.parseInt(System.getProperty("pytorch.jni.num_interop_threads"));
    assertTrue(threads >= 1 && interop >= 1);
    if (System.getenv("PYTORCH_JNI_NUM_THREADS") != null) {
      assertEquals(Integer.parseInt(System.getenv("PYTORCH_JNI_NUM_THREADS")), threads);
    }
    if (System.getenv("PYTORCH_JNI_NUM_INTEROP_THREADS") != null) {
      assertEquals(Integer.parseInt(System.getenv("PYTORCH_JNI_NUM_INTEROP_THREADS")), interop);
    }
    assertTrue(System.getProperty("pytorch.jni.libtorch_version").matches("\\d+\\.\\d+\\.\\d+.*"));
    String libtorch = System.getProperty("pytorch.jni.libtorch_path");
    assertTrue(libtorch.endsWith("libtorch_cpu.so") && Files.exists(Path.of(libtorch)), libtorch);
    assertTrue(System.getProperty("pytorch.jni.bridge_path").endsWith("libpytorch_jni.so"));

    IValue[] modes = values.runMethod("modes", IValue.from(Tensor.fromBlob(new float[] {1}, new long[] {1}))).toTuple();
    boolean gradEnabled = modes[0].toBool();
    boolean inferenceTensor = modes[1].toBool();
    switch (mode) {
      case "inference":
        assertFalse(gradEnabled);
        assertTrue(inferenceTensor);
        break;
      case "no_grad":
        assertFalse(gradEnabled);
        assertFalse(inferenceTensor);
        break;
      default:
        assertTrue(gradEnabled);
        assertFalse(inferenceTensor);
    }
  }
}
