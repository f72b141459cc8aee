package bench;

import com.networknt.schema.Error;
import com.networknt.schema.Schema;
import com.networknt.schema.SchemaLocation;
import com.networknt.schema.SchemaRegistry;
import com.networknt.schema.SpecificationVersion;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import tools.jackson.core.JacksonException;
import tools.jackson.core.TokenStreamLocation;
import tools.jackson.databind.DeserializationFeature;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * A job file of docs/runner-contract.md, read and checked before anything is loaded: valid against
 * docs/schemas/job.schema.json (packaged into the jar as {@code job.schema.json} by the render step),
 * then the ten cross-field rules of "Job rules", in their order. A job that breaks one is refused with
 * {@link BenchRuntime.Fail}: one line, {@code job PATH: 'KEY' ...}, naming the key at fault.
 */
public final class Job {
  /** The schema's place in the jar (harness.java_build.RUNNER_TEMPLATES copies it there). */
  static final String SCHEMA_RESOURCE = "job.schema.json";
  static final Set<String> MLP_KINDS = Set.of("mlp", "mlp_branch");
  /** Bytes per element of each dtype an input tensor may have (docs/runner-contract.md). */
  static final Map<String, Integer> DTYPE_BYTES = Map.of("float32", 4, "float64", 8, "int64", 8, "int32", 4,
      "bool", 1);
  /** Nothing may follow the job's object; a repeated key keeps its last value, as in the other runtimes. */
  static final JsonMapper JSON = JsonMapper.builder().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS).build();

  public final Path path;
  public final JsonNode node;
  public final String runner;
  public final String modelKind;
  public final Path modelFile;
  public final Path inputs;
  public final int inputCount;
  public final int sampleSize;
  public final int outputSize;
  public final long[] layers;
  public final long[] sampleShape;
  public final long[] outputShape;
  public final long[] inputShape;
  public final int batch;
  public final int slots;
  public final int calls;
  public final int warmupCalls;
  /** After warmupCalls, the warm-up goes on until this many seconds have passed since it began. */
  public final double warmupS;
  public final int block;
  public final int bareCalls;
  public final int bareRounds;
  public final int threads;
  public final int interopThreads;
  public final String gradMode;
  public final JsonNode options;
  public final Path outputs;
  public final Path timings;
  public final Path warmupTimings;
  public final Path artifacts;
  public final Path result;
  /** batch * sample_size: the floats of one call's input. */
  public final int inputLength;
  /** batch * output_size: the floats of one call's output. */
  public final int outputLength;
  /** input_tensors, in the model's argument order (the first is the one sample_shape and input_shape describe). */
  public final List<InputTensor> inputTensors;
  /**
   * One float32 tensor, as every built-in model has: the inputs file is then read as floats straight away
   * (BenchRuntime.Inputs#floats), the runners' fast path.
   */
  public final boolean singleFloat;
  /** Where the last input tensor ends: the exact size of the inputs file (rule 10). */
  public final long inputsEnd;
  /** The option channels_last is on (rule 9 has checked its 4-D input_shape). */
  public final boolean channelsLast;
  /** The option graph_optimizer: TorchScript's graph optimizer on in the bridge (off: the official bridge's). */
  public final boolean graphOptimizer;
  /** The optional load key (docs/runner-contract.md, "Load job"), or null: caller threads on the one loaded model. */
  public final Load load;

  /**
   * A load job's settings: {@code mode} closed or poisson, {@code rate} arrivals per second over all callers
   * (poisson only; 0 when absent), {@code ready} and {@code go} null when absent, {@code noop} every call replaced by
   * the no-op stand-in (BenchRuntime.LoadPhase.NoopCaller: the loop's own cost).
   */
  public record Load(String mode, int callers, double durationS, double rate, long seed, Path latencies, Path ready,
      Path go, boolean noop) {
    public boolean closed() {
      return mode.equals("closed");
    }
  }

  /**
   * One entry of input_tensors: its dtype, one sample's shape, the exact shape of one call's tensor and its
   * first byte in the inputs file; {@code sampleElements} is the product of its sample_shape.
   */
  public record InputTensor(String dtype, long[] sampleShape, long[] shape, long offset, int sampleElements) {
    /** Bytes per element of its dtype. */
    public int elementBytes() {
      return DTYPE_BYTES.get(dtype);
    }

    /** Elements of one call's tensor: batch x its sample elements. */
    public int callElements(Job job) {
      return job.batch * sampleElements;
    }
  }

  /** Reads, validates and checks the job at {@code path}; {@code supported}: the options this runner takes. */
  public static Job read(Path path, List<String> supported) {
    String text;
    try {
      text = Files.readString(path, StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new BenchRuntime.Fail("job " + path + ": cannot be read: " + BenchRuntime.oneLine(e));
    }
    JsonNode node;
    try {
      node = JSON.readTree(text);
    } catch (JacksonException e) {
      TokenStreamLocation at = e.getLocation();
      String where = at == null ? "" : " (line " + at.getLineNr() + ", column " + at.getColumnNr() + ")";
      throw new BenchRuntime.Fail("job " + path + ": not JSON" + where + ": " + flat(e.getOriginalMessage()));
    }
    if (node == null || node.isMissingNode()) {
      throw new BenchRuntime.Fail("job " + path + ": not JSON: the file is empty");
    }
    Schema schema = schema();
    List<Error> errors = schema.validate(node);
    if (!errors.isEmpty()) { // the shallowest first, as the Python runtime reports
      throw schemaError(path, errors.stream()
          .min(Comparator.comparingInt(e -> e.getInstanceLocation().getNameCount())).orElseThrow());
    }
    Misfit misfit = floatForInteger(schema.getSchemaNode(), node, null);
    if (misfit != null) {
      throw new BenchRuntime.Fail("job " + path + ": '" + misfit.key + "' holds " + misfit.value + ", a float where "
          + "docs/schemas/job.schema.json wants an integer (the contract's integers are never floats)");
    }
    return new Job(path, node, supported);
  }

  private Job(Path path, JsonNode job, List<String> supported) {
    this.path = path;
    this.node = job;
    runner = job.get("runner").stringValue();
    modelKind = job.get("model_kind").stringValue();
    modelFile = Path.of(job.get("model_file").stringValue());
    inputs = Path.of(job.get("inputs").stringValue());
    inputCount = integer("input_count");
    sampleSize = integer("sample_size");
    outputSize = integer("output_size");
    layers = longs("layers");
    sampleShape = longs("sample_shape");
    outputShape = longs("output_shape");
    inputShape = longs("input_shape");
    batch = integer("batch");
    slots = integer("slots");
    calls = integer("calls");
    warmupCalls = integer("warmup_calls");
    warmupS = job.get("warmup_s").doubleValue();
    block = integer("block");
    bareCalls = integer("bare_calls");
    bareRounds = integer("bare_rounds");
    threads = integer("threads");
    interopThreads = integer("interop_threads");
    gradMode = job.get("grad_mode").stringValue();
    options = job.get("options");
    outputs = Path.of(job.get("outputs").stringValue());
    timings = Path.of(job.get("timings").stringValue());
    warmupTimings = Path.of(job.get("warmup_timings").stringValue());
    artifacts = Path.of(job.get("artifacts").stringValue());
    result = Path.of(job.get("result").stringValue());

    // The cross-field rules of docs/runner-contract.md, "Job rules", in their order.
    long samples = product("sample_shape", sampleShape);
    check(samples == sampleSize, "sample_size", "is " + sampleSize + ", expected the product of sample_shape "
        + Arrays.toString(sampleShape) + " = " + samples); // 1
    long outs = product("output_shape", outputShape);
    check(outs == outputSize, "output_size", "is " + outputSize + ", expected the product of output_shape "
        + Arrays.toString(outputShape) + " = " + outs); // 2
    if (MLP_KINDS.contains(modelKind)) { // 3
      check(layers.length >= 2 && layers[0] == sampleSize && layers[layers.length - 1] == outputSize, "layers",
          "is " + Arrays.toString(layers) + ", expected at least 2 widths with layers[0] = sample_size ("
          + sampleSize + ") and layers[-1] = output_size (" + outputSize + ") for model_kind " + modelKind);
    }
    long perCall = (long) batch * sampleSize;
    long held = product("input_shape", inputShape);
    check(held == perCall, "input_shape", Arrays.toString(inputShape) + " holds " + held
        + " floats, expected batch x sample_size = " + batch + " x " + sampleSize + " = " + perCall); // 4
    check(inputCount >= batch, "input_count", "is " + inputCount + ", less than one batch of " + batch); // 5
    int expectedSlots = Math.min(calls, inputCount / batch);
    check(slots == expectedSlots, "slots", "is " + slots + ", expected min(calls, input_count // batch) = "
        + expectedSlots); // 6
    check(calls % block == 0, "block", "is " + block + ", which does not divide calls = " + calls); // 7
    int blocks = calls / block;
    check(blocks % bareRounds == 0 && bareCalls % bareRounds == 0, "bare_rounds", "is " + bareRounds
        + ", which must divide both calls / block = " + blocks + " and bare_calls = " + bareCalls); // 8
    for (String key : options.propertyNames()) { // 9
      check(supported.contains(key), key, "is an option " + runner + " does not support (it supports "
          + (supported.isEmpty() ? "none" : String.join(", ", supported)) + ")");
    }
    JsonNode graphOptimizerOption = options.get("graph_optimizer");
    graphOptimizer = graphOptimizerOption != null && graphOptimizerOption.booleanValue();
    JsonNode channelsLastOption = options.get("channels_last");
    channelsLast = channelsLastOption != null && channelsLastOption.booleanValue();
    check(!channelsLast || inputShape.length == 4, "channels_last",
        "needs a 4-D input_shape (N, C, H, W), the job's is " + Arrays.toString(inputShape));

    inputTensors = inputTensors(job.get("input_tensors"));
    long end = 0;
    for (InputTensor t : inputTensors) {
      end = t.offset + (long) inputCount * t.sampleElements * t.elementBytes();
    }
    inputsEnd = end;
    singleFloat = inputTensors.size() == 1 && inputTensors.get(0).dtype.equals("float32");

    // What a Java array holds (the contract has no such limit; this runtime has).
    check((long) slots * batch * sampleSize <= BenchRuntime.MAX_ARRAY, "slots", "x batch x sample_size = "
        + (long) slots * batch * sampleSize + " floats do not fit a Java array: use fewer input samples");
    for (int k = 0; k < inputTensors.size(); k++) { // the general path holds each tensor's bytes in one array
      long bytes = (long) slots * batch * inputTensors.get(k).sampleElements * inputTensors.get(k).elementBytes();
      check(bytes <= BenchRuntime.MAX_ARRAY, "input_tensors", "[" + k + "]: slots x batch x its sample = " + bytes
          + " bytes do not fit a Java array: use fewer input samples");
    }
    check((long) slots * batch * outputSize <= BenchRuntime.MAX_ARRAY, "slots", "x batch x output_size = "
        + (long) slots * batch * outputSize + " floats do not fit a Java array: use fewer input samples");
    inputLength = batch * sampleSize;
    outputLength = batch * outputSize;
    load = load(job.get("load"));
  }

  /** The load key as the schema has checked it, or null; a Poisson load without a rate is refused. */
  private Load load(JsonNode l) {
    if (l == null) {
      return null;
    }
    JsonNode callers = l.get("callers");
    check(callers.canConvertToInt(), "callers", "is " + callers + ", more than this runner's int holds");
    JsonNode seed = l.get("seed");
    check(seed.canConvertToLong(), "seed", "is " + seed + ", more than a long holds");
    String mode = l.get("mode").stringValue();
    double rate = l.has("rate") ? l.get("rate").doubleValue() : 0;
    check(!mode.equals("poisson") || rate > 0, "load", "mode poisson needs a 'rate' above 0"); // the Python runtime's
    return new Load(mode, callers.intValue(), l.get("duration_s").doubleValue(), rate, seed.longValue(),
        Path.of(l.get("latencies").stringValue()), l.has("ready") ? Path.of(l.get("ready").stringValue()) : null,
        l.has("go") ? Path.of(l.get("go").stringValue()) : null, l.has("noop") && l.get("noop").booleanValue());
  }

  /**
   * Rule 10: input_tensors[0] is the tensor sample_shape and input_shape describe, every shape holds one
   * batch of its samples, and the tensors lie in order in the inputs file, each 8-byte aligned after the
   * one before (the messages are the Python runtime's, python/runner_common.py).
   */
  private List<InputTensor> inputTensors(JsonNode list) {
    List<InputTensor> tensors = new ArrayList<>();
    long end = 0;
    for (int k = 0; k < list.size(); k++) {
      JsonNode t = list.get(k);
      long[] sample = longs(t.get("sample_shape"), "input_tensors");
      long[] shape = longs(t.get("shape"), "input_tensors");
      JsonNode at = t.get("offset");
      check(at.canConvertToLong(), "input_tensors", "[" + k + "] offset " + at + " is more than a long holds");
      long offset = at.longValue();
      String dtype = t.get("dtype").stringValue();
      if (k == 0 && (!Arrays.equals(sample, sampleShape) || !Arrays.equals(shape, inputShape))) {
        throw tensorRefused(0, "has sample_shape " + Arrays.toString(sample) + " and shape " + Arrays.toString(shape)
            + ", expected the job's sample_shape " + Arrays.toString(sampleShape) + " and input_shape "
            + Arrays.toString(inputShape) + " (rule 10)");
      }
      long elements = product("input_tensors", sample);
      long held = product("input_tensors", shape);
      if (held % batch != 0 || held / batch != elements) {
        throw tensorRefused(k, "shape " + Arrays.toString(shape) + " does not hold batch x its sample_shape = "
            + batch + " x " + Arrays.toString(sample) + " (rule 10)");
      }
      long start = k == 0 ? 0 : end + Math.floorMod(-end, 8L);
      if (offset != start) {
        throw tensorRefused(k, "offset is " + offset + ", expected " + start + " (rule 10)");
      }
      check(elements <= Integer.MAX_VALUE, "input_tensors", "[" + k + "] sample_shape " + Arrays.toString(sample)
          + " holds more elements than this runner's int holds");
      try {
        end = Math.addExact(start, Math.multiplyExact((long) inputCount, elements * DTYPE_BYTES.get(dtype)));
      } catch (ArithmeticException e) {
        throw tensorRefused(k, "ends beyond 2^63 bytes");
      }
      tensors.add(new InputTensor(dtype, sample, shape, offset, (int) elements));
    }
    return List.copyOf(tensors);
  }

  /** The refusal of input_tensors[k]: {@code job PATH: 'input_tensors'[k] detail}. */
  BenchRuntime.Fail tensorRefused(int k, String detail) {
    return new BenchRuntime.Fail("job " + path + ": 'input_tensors'[" + k + "] " + detail);
  }

  /** The refusal of this job: {@code job PATH: 'KEY' detail}. */
  BenchRuntime.Fail refused(String key, String detail) {
    return new BenchRuntime.Fail("job " + path + ": '" + key + "' " + detail);
  }

  private void check(boolean condition, String key, String detail) {
    if (!condition) {
      throw refused(key, detail);
    }
  }

  /** A key the schema holds to an integer, as a Java int (this runtime's counts and sizes are ints). */
  private int integer(String key) {
    JsonNode value = node.get(key);
    check(value.canConvertToInt(), key, "is " + value + ", more than this runner's int holds ("
        + Integer.MAX_VALUE + ")");
    return value.intValue();
  }

  /** A key the schema holds to a list of integers. */
  private long[] longs(String key) {
    return longs(node.get(key), key);
  }

  private long[] longs(JsonNode list, String key) {
    long[] values = new long[list.size()];
    for (int i = 0; i < values.length; i++) {
      check(list.get(i).canConvertToLong(), key, "is " + list + ", an entry more than a long holds");
      values[i] = list.get(i).longValue();
    }
    return values;
  }

  private long product(String key, long[] shape) {
    try {
      long n = 1;
      for (long d : shape) {
        n = Math.multiplyExact(n, d);
      }
      return n;
    } catch (ArithmeticException e) {
      throw refused(key, Arrays.toString(shape) + " holds more than 2^63 floats");
    }
  }

  /** The job schema from the jar (its relative $id resolves against its classpath location). */
  private static Schema schema() {
    if (Job.class.getResource("/" + SCHEMA_RESOURCE) == null) {
      throw new IllegalStateException(SCHEMA_RESOURCE + " is not in the runner's jar: render the runner again");
    }
    return SchemaRegistry.withDefaultDialect(SpecificationVersion.DRAFT_2020_12)
        .getSchema(SchemaLocation.of("classpath:" + SCHEMA_RESOURCE));
  }

  /** A value at odds with the schema as the contract reads it, and the key it is under. */
  private record Misfit(String key, JsonNode value) {}

  /**
   * JSON Schema counts 8.0 as an integer; the contract does not ("an integer is never a boolean or a
   * float"). The key of the first number written with a fraction or exponent where the schema's type is
   * integer (walking its properties and items), or null.
   */
  private static Misfit floatForInteger(JsonNode schema, JsonNode value, String key) {
    JsonNode type = schema.get("type");
    boolean integer = type != null && (type.isString() ? "integer".equals(type.stringValue())
        : type.isArray() && type.valueStream().anyMatch(t -> "integer".equals(t.stringValue()))
            && type.valueStream().noneMatch(t -> "number".equals(t.stringValue())));
    if (integer && value.isFloatingPointNumber()) {
      return new Misfit(key, value);
    }
    JsonNode properties = schema.get("properties");
    if (value.isObject() && properties != null) {
      for (Map.Entry<String, JsonNode> e : value.properties()) {
        JsonNode sub = properties.get(e.getKey());
        Misfit found = sub == null ? null : floatForInteger(sub, e.getValue(), e.getKey());
        if (found != null) {
          return found;
        }
      }
    }
    JsonNode items = schema.get("items");
    if (value.isArray() && items != null) {
      for (JsonNode item : value) {
        Misfit found = floatForInteger(items, item, key);
        if (found != null) {
          return found;
        }
      }
    }
    return null;
  }

  /**
   * A schema error as one line naming the key at fault: the missing or unknown key for "required" and
   * "additionalProperties", else the innermost key of the value's location (an option's own name for a
   * wrong option, the list's key for a bad entry of a shape).
   */
  private static BenchRuntime.Fail schemaError(Path path, Error error) {
    String location = error.getInstanceLocation().toString();
    String key = error.getProperty();
    if (key == null) {
      List<String> names = new ArrayList<>();
      for (int i = 0; i < error.getInstanceLocation().getNameCount(); i++) {
        Object element = error.getInstanceLocation().getElement(i);
        if (element instanceof String name) {
          names.add(name);
        }
      }
      key = names.isEmpty() ? null : names.get(names.size() - 1);
    }
    String where = location.isEmpty() || location.equals("$") ? "" : " at " + location;
    String detail = "breaks docs/schemas/job.schema.json (" + error.getKeyword() + where + "): "
        + flat(error.getMessage());
    if (key == null) {
      return new BenchRuntime.Fail("job " + path + ": " + detail);
    }
    return new BenchRuntime.Fail("job " + path + ": '" + key + "' " + detail);
  }

  private static String flat(String text) {
    return text == null ? "(no message)" : text.replaceAll("\\s*\\R\\s*", " ").trim();
  }
}
