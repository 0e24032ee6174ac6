// End-to-end latency probe for scripts/bench_kafka.py: a producer writing JSON records at a fixed
// rate with the wall-clock time of the send in each record, and a read_committed consumer of the
// job's output that measures, for each output record, its consume time minus a reference time
// taken from the record itself.
//
//   java -cp "$KAFKA_HOME/libs/kafka-clients-4.4.0.jar:$KAFKA_HOME/libs/slf4j-api-1.7.36.jar" \
//     bench/kafka/LatencyProbe.java --bootstrap HOST:PORT --in TOPIC --out TOPIC --partitions N \
//     --rate 20000 --warmup 10 --seconds 30 --tail 5 --mode record|window [--window-ms 1000]
//   ... --bootstrap HOST:PORT --partitions N --create TOPIC,TOPIC   # only creates the topics
//
// Input records: {"id":n,"k":n%1000,"v":0..99,"pt":<ms since the epoch at send>}, record n to
// partition n % N (every partition gets data all the time, so a source's watermark, the minimum over
// its partitions, keeps up with the clock).
//
// Reference time of an output record:
//   --mode record: its "pt" field, the producer time of the input record it came from;
//   --mode window: its "window_start" (SQL timestamp, UTC) plus --window-ms, the window's end: the
//     earliest moment the window's result could exist at all.
//
// The producer runs for warmup + seconds + tail. Only output records whose reference time falls in
// [warmup, warmup + seconds) from the start count, so start-up (topic creation, the job's first
// checkpoint) and the records still in flight at the end are left out. Prints one JSON line.
//
// Only kafka-clients and slf4j-api on the class path; scripts/bench_kafka.py compiles it with javac
// (Java 17) into its work directory.

import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeFormatterBuilder;
import java.time.temporal.ChronoField;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class LatencyProbe {
    static final DateTimeFormatter SQL_TS = new DateTimeFormatterBuilder()
            .appendPattern("yyyy-MM-dd")
            .optionalStart().appendLiteral(' ').optionalEnd()
            .optionalStart().appendLiteral('T').optionalEnd()
            .appendPattern("HH:mm:ss")
            .optionalStart().appendFraction(ChronoField.NANO_OF_SECOND, 0, 9, true).optionalEnd()
            .optionalStart().appendLiteral('Z').optionalEnd()
            .toFormatter();

    public static void main(String[] argv) throws Exception {
        Map<String, String> a = new HashMap<>();
        for (int i = 0; i + 1 < argv.length; i += 2) a.put(argv[i].replaceFirst("^--", ""), argv[i + 1]);
        String bootstrap = a.get("bootstrap"), in = a.get("in"), out = a.get("out");
        int partitions = Integer.parseInt(a.getOrDefault("partitions", "1"));
        long rate = Long.parseLong(a.getOrDefault("rate", "20000"));
        long warmupMs = Long.parseLong(a.getOrDefault("warmup", "10")) * 1000;
        long measureMs = Long.parseLong(a.getOrDefault("seconds", "30")) * 1000;
        long tailMs = Long.parseLong(a.getOrDefault("tail", "5")) * 1000;
        boolean window = a.getOrDefault("mode", "record").equals("window");
        long windowMs = Long.parseLong(a.getOrDefault("window-ms", "1000"));

        if (a.containsKey("create")) {
            createTopics(bootstrap, a.get("create").split(","), partitions);
            return;
        }
        long start = System.currentTimeMillis();
        long from = start + warmupMs, to = from + measureMs, end = to + tailMs;

        Properties cp = new Properties();
        cp.put("bootstrap.servers", bootstrap);
        cp.put("isolation.level", "read_committed");
        cp.put("key.deserializer", ByteArrayDeserializer.class.getName());
        cp.put("value.deserializer", ByteArrayDeserializer.class.getName());
        cp.put("fetch.max.wait.ms", "50");
        cp.put("allow.auto.create.topics", "true");
        AtomicLong consumed = new AtomicLong();
        List<Long> lat = new ArrayList<>();
        long[] outside = new long[1];
        String[] error = new String[1];
        Thread consumer = new Thread(() -> {
            try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(cp)) {
                List<TopicPartition> tps = new ArrayList<>();
                // The sink creates its topic (auto-create) on its first write; asking for its
                // partitions may create it first, with the broker's default partition count.
                while (tps.isEmpty() && System.currentTimeMillis() < end) {
                    List<PartitionInfo> ps = c.partitionsFor(out);
                    if (ps != null) for (PartitionInfo p : ps) tps.add(new TopicPartition(out, p.partition()));
                    if (tps.isEmpty()) Thread.sleep(100);
                }
                c.assign(tps);
                c.seekToBeginning(tps);
                while (System.currentTimeMillis() < end) {
                    ConsumerRecords<byte[], byte[]> rs = c.poll(java.time.Duration.ofMillis(100));
                    long now = System.currentTimeMillis();
                    for (ConsumerRecord<byte[], byte[]> r : rs) {
                        consumed.incrementAndGet();
                        String v = new String(r.value(), java.nio.charset.StandardCharsets.UTF_8);
                        long ref = window ? windowEnd(v, windowMs) : longField(v, "pt");
                        if (ref >= from && ref < to) lat.add(now - ref);
                        else outside[0]++;
                    }
                }
            } catch (Exception e) {
                error[0] = e.toString();
            }
        });
        consumer.start();

        Properties pp = new Properties();
        pp.put("bootstrap.servers", bootstrap);
        pp.put("key.serializer", StringSerializer.class.getName());
        pp.put("value.serializer", StringSerializer.class.getName());
        pp.put("linger.ms", "5");
        long produced = 0;
        long behindMax = 0;
        SplittableRandom rnd = new SplittableRandom(7);
        try (KafkaProducer<String, String> p = new KafkaProducer<>(pp)) {
            long t0 = System.nanoTime();
            while (System.currentTimeMillis() < end) {
                long due = (System.nanoTime() - t0) / 1000 * rate / 1_000_000;
                behindMax = Math.max(behindMax, due - produced);
                while (produced < due) {
                    long n = produced++;
                    String v = "{\"id\":" + n + ",\"k\":" + (n % 1000) + ",\"v\":" + rnd.nextInt(100)
                            + ",\"pt\":" + System.currentTimeMillis() + "}";
                    p.send(new ProducerRecord<>(in, (int) (n % partitions), null, v));
                }
                Thread.sleep(1);
            }
        }
        consumer.join();
        long[] l = lat.stream().mapToLong(Long::longValue).toArray();
        Arrays.sort(l);
        double secs = (end - start) / 1000.0;
        StringBuilder sb = new StringBuilder("{");
        sb.append("\"produced\":").append(produced);
        sb.append(",\"produce_rate\":").append(Math.round(produced / secs));
        sb.append(",\"producer_max_backlog\":").append(behindMax);
        sb.append(",\"consumed\":").append(consumed.get());
        sb.append(",\"measured\":").append(l.length);
        sb.append(",\"outside_window\":").append(outside[0]);
        if (l.length > 0) {
            sb.append(",\"min_ms\":").append(l[0]);
            sb.append(",\"p50_ms\":").append(pct(l, 0.50));
            sb.append(",\"p90_ms\":").append(pct(l, 0.90));
            sb.append(",\"p99_ms\":").append(pct(l, 0.99));
            sb.append(",\"max_ms\":").append(l[l.length - 1]);
        }
        if (error[0] != null) sb.append(",\"error\":\"").append(error[0].replace("\"", "'")).append('"');
        System.out.println(sb.append('}'));
    }

    /** Creates the topics with N partitions (one replica), if they do not exist yet. */
    static void createTopics(String bootstrap, String[] names, int partitions) throws Exception {
        Properties ap = new Properties();
        ap.put("bootstrap.servers", bootstrap);
        try (Admin admin = Admin.create(ap)) {
            List<NewTopic> topics = new ArrayList<>();
            for (String n : names) topics.add(new NewTopic(n, partitions, (short) 1));
            for (var f : admin.createTopics(topics).values().values()) {
                try {
                    f.get();
                } catch (java.util.concurrent.ExecutionException e) {
                    if (!(e.getCause() instanceof TopicExistsException)) throw e;
                }
            }
        }
    }

    static long pct(long[] sorted, double q) {
        int i = (int) Math.ceil(q * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, i))];
    }

    /** The number after "name": in a flat JSON object. */
    static long longField(String json, String name) {
        int i = json.indexOf("\"" + name + "\"");
        if (i < 0) throw new IllegalArgumentException("no field '" + name + "' in " + json);
        i = json.indexOf(':', i) + 1;
        while (json.charAt(i) == ' ' || json.charAt(i) == '"') i++;
        int j = i;
        while (j < json.length() && (Character.isDigit(json.charAt(j)) || json.charAt(j) == '-')) j++;
        return Long.parseLong(json.substring(i, j));
    }

    /** window_start (a SQL timestamp string in UTC, or epoch ms) plus the window's length. */
    static long windowEnd(String json, long windowMs) {
        int i = json.indexOf("\"window_start\"");
        if (i < 0) throw new IllegalArgumentException("no field 'window_start' in " + json);
        i = json.indexOf(':', i) + 1;
        while (json.charAt(i) == ' ') i++;
        long startMs;
        if (json.charAt(i) == '"') {
            String s = json.substring(i + 1, json.indexOf('"', i + 1));
            startMs = LocalDateTime.parse(s, SQL_TS).toInstant(ZoneOffset.UTC).toEpochMilli();
        } else {
            startMs = longField(json, "window_start");
        }
        return startMs + windowMs;
    }
}
