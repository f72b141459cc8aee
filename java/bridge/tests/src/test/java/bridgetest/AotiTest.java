package bridgetest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import bridge.AotiModel;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** bridge.AotiModel: an AOTInductor package (make_fixtures.py's aoti.pt2, a 2-8-8-1 MLP for input [2]). */
class AotiTest {
  private static final long[] SHAPE = {2};
  private static Path fixtures;
  private static Path pt2;

  @BeforeAll
  static void fixtures() {
    Assumptions.assumeTrue(
        System.getProperty("expect.load.failure", "").isEmpty(),
        "bad-configuration run: only BadConfigTest applies");
    String dir = System.getProperty("fixtures.dir");
    assertNotNull(dir, "run with -Dfixtures.dir=<output of make_fixtures.py>");
    fixtures = Path.of(dir);
    pt2 = fixtures.resolve("aoti.pt2");
    assertTrue(Files.isRegularFile(pt2), "no " + pt2 + ": run make_fixtures.py");
  }

  private static FloatBuffer direct(int floats) {
    return ByteBuffer.allocateDirect(floats * Float.BYTES).order(ByteOrder.nativeOrder()).asFloatBuffer();
  }

  private static float[] floats(String name) throws IOException {
    FloatBuffer b = ByteBuffer.wrap(Files.readAllBytes(fixtures.resolve(name)))
        .order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
    float[] out = new float[b.remaining()];
    b.get(out);
    return out;
  }

  @Test
  void outputsEqualPythonsForThePackage() throws IOException {
    float[] inputs = floats("aoti.inputs.bin");
    float[] expected = floats("aoti.expected.bin");
    assertEquals(inputs.length, 2 * expected.length);
    FloatBuffer in = direct(2);
    FloatBuffer out = direct(1);
    try (AotiModel model = AotiModel.load(pt2.toString())) {
      model.bind(in, SHAPE, out);
      for (int round = 0; round < 3; round++) { // the same buffers, refilled: each run sees the new input
        for (int i = 0; i < expected.length; i++) {
          in.put(0, inputs, 2 * i, 2);
          model.run();
          float y = out.get(0);
          assertEquals(expected[i], y, 1e-5f * (1 + Math.abs(expected[i])), "sample " + i);
        }
      }
    }
  }

  @Test
  void eachRunWritesTheSlotItNames() throws IOException {
    float[] inputs = floats("aoti.inputs.bin");
    float[] expected = floats("aoti.expected.bin");
    int slots = expected.length;
    FloatBuffer in = direct(2);
    FloatBuffer out = direct(slots);
    try (AotiModel model = AotiModel.load(pt2.toString())) {
      model.bind(in, SHAPE, out, slots);
      for (int i = slots - 1; i >= 0; i--) { // backwards: a slot written is never written again
        in.put(0, inputs, 2 * i, 2);
        model.run(i);
        for (int k = 0; k < i; k++) {
          assertEquals(0f, out.get(k), "slot " + k + " before its run");
        }
      }
      for (int i = 0; i < slots; i++) {
        assertEquals(expected[i], out.get(i), 1e-5f * (1 + Math.abs(expected[i])), "slot " + i);
      }
      IndexOutOfBoundsException past = assertThrows(IndexOutOfBoundsException.class, () -> model.run(slots));
      assertEquals("slot " + slots + " of an output buffer bound with " + slots + " slots", past.getMessage());
      assertThrows(IndexOutOfBoundsException.class, () -> model.run(-1));
      IllegalArgumentException split = assertThrows(IllegalArgumentException.class,
          () -> model.bind(in, SHAPE, direct(5), 2));
      assertTrue(split.getMessage().startsWith("the output buffer's 5 floats do not split into 2 slots"),
          split.getMessage());
      model.bind(in, SHAPE, direct(4), 2);
      IllegalArgumentException size = assertThrows(IllegalArgumentException.class, () -> model.run(1));
      assertTrue(size.getMessage().startsWith("the output has 1 floats, a slot of the output buffer holds 2"),
          size.getMessage());
    }
  }

  @Test
  void sharedModelsRunOnTheirOwnThreadsAtOnce() throws Exception {
    float[] inputs = floats("aoti.inputs.bin");
    float[] expected = floats("aoti.expected.bin");
    int n = expected.length;
    try (AotiModel first = AotiModel.load(pt2.toString(), 2)) {
      AotiModel[] models = {first, first.share()};
      FloatBuffer[] ins = {direct(2), direct(2)}; // held here: the bridge keeps only their addresses
      FloatBuffer[] outs = {direct(1), direct(1)};
      for (int t = 0; t < 2; t++) {
        models[t].bind(ins[t], SHAPE, outs[t]);
      }
      float[][] got = new float[2][n];
      Throwable[] failed = new Throwable[2];
      Thread[] threads = new Thread[2];
      for (int t = 0; t < 2; t++) {
        int me = t;
        threads[t] = new Thread(() -> {
          FloatBuffer in = ins[me];
          FloatBuffer out = outs[me];
          try {
            for (int round = 0; round < 200; round++) { // both threads at once, each on its own buffers
              for (int i = 0; i < n; i++) {
                int sample = me == 0 ? i : n - 1 - i;
                in.put(0, inputs, 2 * sample, 2);
                models[me].run();
                got[me][sample] = out.get(0);
              }
            }
          } catch (Throwable e) {
            failed[me] = e;
          }
        });
        threads[t].start();
      }
      for (Thread t : threads) {
        t.join();
      }
      for (int t = 0; t < 2; t++) {
        if (failed[t] != null) {
          throw new AssertionError("thread " + t + " failed", failed[t]);
        }
        for (int i = 0; i < n; i++) {
          assertEquals(expected[i], got[t][i], 1e-5f * (1 + Math.abs(expected[i])), "thread " + t + ", sample " + i);
        }
      }
      models[1].close();
      first.run(); // the package stays loaded for the other AotiModel
    }
    IllegalArgumentException zero = assertThrows(IllegalArgumentException.class, () -> AotiModel.load(pt2.toString(), 0));
    assertEquals("runners is 0: give at least 1", zero.getMessage());
  }

  @Test
  void aMissingPackageIsNamed() {
    String missing = fixtures.resolve("no-such.pt2").toString();
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> AotiModel.load(missing));
    assertTrue(e.getMessage().startsWith("no AOTInductor package at " + missing), e.getMessage());
  }

  @Test
  void aCorruptPackageIsRefusedClearly(@TempDir Path tmp) throws IOException {
    Path garbage = tmp.resolve("garbage.pt2");
    Files.write(garbage, "not a zip archive".getBytes());
    Path truncated = tmp.resolve("truncated.pt2");
    byte[] whole = Files.readAllBytes(pt2);
    Files.write(truncated, Arrays.copyOf(whole, whole.length / 2));
    for (Path bad : new Path[] {garbage, truncated}) {
      IllegalArgumentException e =
          assertThrows(IllegalArgumentException.class, () -> AotiModel.load(bad.toString()));
      assertTrue(e.getMessage().startsWith(bad + " is not a loadable AOTInductor package: "), e.getMessage());
      assertTrue(e.getMessage().lines().count() == 1, e.getMessage());
    }
  }

  @Test
  void badBuffersAreRefused() {
    try (AotiModel model = AotiModel.load(pt2.toString())) {
      IllegalStateException early = assertThrows(IllegalStateException.class, model::run);
      assertTrue(early.getMessage().contains("bind the buffers before run"), early.getMessage());
      IllegalArgumentException heap = assertThrows(IllegalArgumentException.class,
          () -> model.bind(FloatBuffer.allocate(2), SHAPE, direct(1)));
      assertTrue(heap.getMessage().startsWith("the input buffer is not direct"), heap.getMessage());
      ByteOrder other = ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN ? ByteOrder.BIG_ENDIAN
          : ByteOrder.LITTLE_ENDIAN;
      FloatBuffer swapped = ByteBuffer.allocateDirect(8).order(other).asFloatBuffer();
      IllegalArgumentException order = assertThrows(IllegalArgumentException.class,
          () -> model.bind(direct(2), SHAPE, swapped));
      assertTrue(order.getMessage().startsWith("the output buffer is " + other), order.getMessage());
      IllegalArgumentException size = assertThrows(IllegalArgumentException.class,
          () -> model.bind(direct(3), SHAPE, direct(1)));
      assertEquals("the input shape holds 2 floats, the input buffer 3", size.getMessage());
      model.bind(direct(2), SHAPE, direct(4));
      IllegalArgumentException out = assertThrows(IllegalArgumentException.class, model::run);
      assertEquals("the output has 1 floats, the output buffer holds 4: export the package for input [2] "
          + "(AOTInductor does not check it)", out.getMessage());
    }
  }

  @Test
  void aClosedModelRefusesCalls() {
    AotiModel model = AotiModel.load(pt2.toString());
    model.bind(direct(2), SHAPE, direct(1));
    model.run();
    model.close();
    model.close(); // twice is fine
    IllegalStateException e = assertThrows(IllegalStateException.class, model::run);
    assertTrue(e.getMessage().endsWith(" is closed"), e.getMessage());
  }
}
