package bridgetest;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.pytorch.Module;

/**
 * Run alone (-Dtest=BadConfigTest) with an invalid PYTORCH_JNI_* variable and
 * -Dexpect.load.failure=TEXT: loading the bridge must fail in Java, naming the setting.
 */
class BadConfigTest {
  @Test
  void invalidSettingFailsTheLoadInJava() {
    String expected = System.getProperty("expect.load.failure", "");
    Assumptions.assumeFalse(expected.isEmpty(), "only for the bad-configuration run");
    String path = Path.of(System.getProperty("fixtures.dir"), "identity.pt").toString();
    Throwable thrown = assertThrows(Throwable.class, () -> Module.load(path));
    StringBuilder messages = new StringBuilder();
    for (Throwable t = thrown; t != null; t = t.getCause()) {
      messages.append(t.getClass().getName()).append(": ").append(t.getMessage()).append('\n');
    }
    assertTrue(messages.toString().contains(expected), messages.toString());
  }
}
