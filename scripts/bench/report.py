"""Writes BENCHMARKS.md from the results scripts/benchmarks collected.

Usage: report.py RESULTS_DIR OUTPUT.md
RESULTS_DIR holds <name>.json (the final JSON line), <name>.jsonl (every JSON line) and
<name>.meta (command, seconds, load average before) for each benchmark that ran.
"""
import datetime
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

results, output = Path(sys.argv[1]), Path(sys.argv[2])

# Published results the evaluations are compared with.
DRAIN_GA = {  # Zhu et al., "Tools and Benchmarks for Automated Log Parsing" (ICSE-SEIP 2019), Drain
    "Apache": "1.000", "BGL": "0.963", "HDFS": "0.998", "Hadoop": "0.948",
    "HealthApp": "0.780 (original labels)", "OpenSSH": "0.789 (original labels)", "Spark": "0.922", "Zookeeper": "0.967",
}
NAB_STANDARD = [  # the NAB scoreboard (standard profile, full corpus of 58 series)
    ("ARTime", 74.9), ("Numenta HTM", 70.1), ("CAD OSE", 69.9), ("KNN CAD", 58.0),
    ("Twitter ADVec", 47.1), ("Etsy Skyline", 35.7),
]


def sh(*command):
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def load(name):
    path = results / f"{name}.json"
    if not path.exists() or not path.read_text().strip():
        return None
    meta_path = results / f"{name}.meta"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    lines = []
    jsonl = results / f"{name}.jsonl"
    if jsonl.exists():
        lines = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    when = datetime.datetime.fromtimestamp(path.stat().st_mtime, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return json.loads(path.read_text()), lines, meta, when


def machine():
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            memory = int(line.split()[1]) / 1024 / 1024
    os_name = ""
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("PRETTY_NAME="):
            os_name = line.split("=", 1)[1].strip('"')
    swift = sh("swift", "--version").splitlines()
    servers = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    postgres = sh(str(servers[-1]), "--version").replace("postgres (PostgreSQL) ", "") if servers else ""
    nginx = subprocess.run(["/usr/sbin/nginx", "-v"], capture_output=True, text=True).stderr.strip() if os.path.exists("/usr/sbin/nginx") else ""
    python_versions = sh("python3", "-c",
                         "import importlib.metadata as m\n"
                         "for p in ('drain3', 'scikit-learn', 'numpy'):\n"
                         "    try: print(p, m.version(p))\n"
                         "    except Exception: pass")
    return [
        ("CPU", f"{cpu}, {os.cpu_count()} cores"),
        ("Memory", f"{memory:.0f} GiB"),
        ("OS", f"{os_name}, Linux {platform.release()}"),
        ("Swift", swift[0] if swift else "?"),
        ("PostgreSQL", postgres or "?"),
        ("librdkafka", sh("pkg-config", "--modversion", "rdkafka") or "?"),
        ("nginx", nginx.replace("nginx version: ", "") or "?"),
        ("wrk", (sh("bash", "-c", "wrk -v 2>&1 | head -n1") or "?").split(" [")[0]),
        ("Python references", ", ".join(python_versions.splitlines()) or "?"),
    ]


def number(value, digits=0):
    return f"{value:,.{digits}f}"


sections = []
missing = []


def section(title, name, body):
    loaded = load(name)
    if loaded is None:
        missing.append(title)
        return
    final, lines, meta, when = loaded
    text = f"## {title}\n\n`{meta.get('command', '?')}` — run {when}, {meta.get('seconds', '?')} s, load average before {meta.get('load_before', '?')}\n\n"
    text += body(final, lines).strip() + "\n"
    sections.append(text)


section("Ingest", "ingest", lambda r, _: f"""
Produces {number(r['events'])} events into the embedded Kafka cluster and ingests them through the
real pipeline (decode, enrich, fingerprint, one transaction per batch, offsets committed after it)
into a fresh PostgreSQL with fsync on; the reference loads the same rows with `psql \\copy` into the
same table.

| Faultline ingest | reference: `psql \\copy` | ratio |
|---|---|---|
| {number(r['events_per_sec'])} events/s ({r['seconds']} s) | {number(r['copy_events_per_sec'])} rows/s ({r['copy_seconds']} s) | **{r['ratio']:.2f}** |
""")

section("Ingest: the decoding stage", "decode", lambda r, _: f"""
The CPU one thread spends per event of the ingest benchmark's messages ({r['bytes_per_event']} bytes of native
JSON each), with no database or broker; each stage timed on its own, the median of the passes over
{number(r['events'])} events. A profile of ingest, not a comparison: it has no reference.

| parse and decode | fingerprint (mask, hash) | enrich | the whole stage | events/s per core |
|---|---|---|---|---|
| {r['decode_us']:.2f} µs | {r['fingerprint_us']:.2f} µs | {r['enrich_us']:.2f} µs | **{r['pipeline_us']:.2f} µs** | {number(r['events_per_sec_per_core'])} |
""")

section("HTTP", "http", lambda r, _: f"""
`wrk -t2 -c{r['connections']} -d{r['duration_s']}s --latency` against `GET /v1/insights` (an API key,
{number(r['body_bytes'])}-byte JSON, the list served from memory as in production, metrics recorded),
then against nginx (`worker_processes {r['nginx_worker_processes']}`, `access_log off`) serving the
same bytes as a static file. Goal: a ratio of at least 0.5 and p99 under 10 ms.

| Faultline | p99 | reference: nginx | nginx p99 | ratio |
|---|---|---|---|---|
| {number(r['faultline_rps'])} req/s | {r['p99_ms']:.1f} ms | {number(r['nginx_rps'])} req/s | {r['nginx_p99_ms']:.1f} ms | **{r['ratio']:.2f}** |
""")

section("Alert latency", "alert-latency", lambda r, _: f"""
Time from the first event of a spike entering Kafka to its signed webhook arriving at a receiver on
loopback, through the real pipeline (ingest, the analysis every {r['analysis_interval_s']} s, the
outbox, the dispatcher, the 5 s digest window). Goal: one bucket plus 2 s ({r['goal_s']} s).

| runs | p50 | max | each run |
|---|---|---|---|
| {r['runs']} | **{r['p50_s']} s** | {r['max_s']} s | {', '.join(f'{x} s' for x in r['latencies_s'])} |
""")

section("Soak", "soak", lambda r, _: f"""
`faultline serve` (every role; restarted if it dies) for {r['minutes']} minutes at a steady rate, with
1 % hostile messages (crafted shapes and the fuzz corpora's inputs the decoder refuses), keep-alive
API clients on the list endpoints, and a webhook receiver flapping every 20 s between answering,
503 and dropped connections. Every produced message must end stored or dead-lettered, with no restart.

| produced | stored | dead-lettered (hostile sent) | accounted | restarts | RSS after 30 s → at the end | API requests, p99 | webhook requests |
|---|---|---|---|---|---|---|---|
| {number(r['produced'])} | {number(r['stored'])} | {number(r['dead_lettered'])} ({number(r['hostile'])}) | **{r['accounted']}** | **{r['restarts']}** | {r['rss_first_mib']} → {r['rss_last_mib']} MiB | {number(r['api_requests'])}, {r['api_p99_ms']} ms | {r['webhook_requests']} |
""")

section("API isolation", "isolation", lambda r, _: f"""
`faultline serve --role ingest,api` ingests the same {number(r['events'])} events four times (a fresh database
and consumer group each): with no API load, while wrk sends `/healthz` from {r['connections']} connections, while
it sends `/v1/insights` with made-up keys, and while it sends the list endpoints with a valid key.
A probe asks `/healthz` every 100 ms throughout. Ingest time runs from the first event stored to the
last. Goal: made-up and valid keys at most 1.2× the `/healthz` time; `/healthz` within 250 ms.

| load | ingest | load served | `/healthz` p99 | `/healthz` max |
|---|---|---|---|---|
| none | {r['none_seconds']:.2f} s | | {r['none_healthz_p99_ms']:.1f} ms | {r['none_healthz_max_ms']:.1f} ms |
| `/healthz` | {r['healthz_seconds']:.2f} s | {number(r['healthz_load_rps'])} req/s | {r['healthz_healthz_p99_ms']:.1f} ms | {r['healthz_healthz_max_ms']:.1f} ms |
| made-up keys | {r['random_keys_seconds']:.2f} s (**{r['random_keys_ratio']:.2f}×**) | {number(r['random_keys_load_rps'])} req/s | {r['random_keys_healthz_p99_ms']:.1f} ms | {r['random_keys_healthz_max_ms']:.1f} ms |
| valid key, list endpoints | {r['valid_keys_seconds']:.2f} s (**{r['valid_keys_ratio']:.2f}×**) | {number(r['valid_keys_load_rps'])} req/s | {r['valid_keys_healthz_p99_ms']:.1f} ms | {r['valid_keys_healthz_max_ms']:.1f} ms |
""")

section("Analysis at size", "analysis", lambda r, _: f"""
A fresh database filled with {number(r['groups'])} Zipf-shaped error groups of {r['services']} services (a few busy, a
long tail) over {r['days']} days of per-minute counts with a daily shape ({number(r['count_rows'])} rows) and a few
events each; then a leader takeover (every detector rebuilt from a day of counts), a steady run, the
takeover's peak resident memory, and the API's list endpoints under four keep-alive clients.
Goal (at 100,000 groups over 1,000 services and 7 days): takeover < 60 s, steady run < 5 s,
peak RSS < 2 GiB, list p99 < 50 ms.

| groups | takeover | steady run | peak RSS | list p99 |
|---|---|---|---|---|
| {number(r['groups'])} | {r['takeover_s']:.1f} s | {r['steady_run_s']:.3f} s | {r['rss_mib']:.0f} MiB | {r['list_p99_ms']:.1f} ms |
""")

section("Template mining speed", "templates", lambda r, _: f"""
{number(r['messages'])} Loghub-2k messages (the eight systems repeated, one per line of a file both sides
read) through Faultline's miner and through Drain3 with its defaults, each timed in its own thread's
CPU time, taking turns; medians.
Goal: 15× Drain3.

| Faultline | reference: Drain3 | ratio |
|---|---|---|
| {number(r['faultline_msgs_per_s'])} msgs/s | {number(r['drain3_msgs_per_s'])} msgs/s | **{r['ratio']:.1f}** |
""")

section("k-means", "kmeans", lambda r, _: f"""
k-means on {number(r['n'])} float32 vectors of {r['d']} dimensions (a seeded Gaussian mixture), k = {r['k']},
from the same k-means++ initial centroids on both sides, tolerance 1e-4 as scikit-learn defines it,
best of {r['repeats']}. Faultline (Elkan's bounds) runs on every core; the reference is scikit-learn's
`KMeans(n_init=1, algorithm="lloyd")` with its default threads, and on one thread. Times are wall
clock: a ratio below 1 means Faultline is faster. Iterations: Faultline {r['faultline_iterations']},
scikit-learn {r['sklearn_iterations']}.

| Faultline | reference: scikit-learn | ratio | scikit-learn, 1 thread | ratio | inertia ratio | ARI vs truth | ARI Faultline vs scikit-learn |
|---|---|---|---|---|---|---|---|
| {r['faultline_s']:.3f} s | {r['sklearn_s']:.3f} s | **{r['ratio']:.2f}** | {r['sklearn_1thread_s']:.3f} s | {r['ratio_1thread']:.2f} | {r['inertia_ratio']:.4f} | {r['ari_vs_truth']:.3f} | {r['ari_between']:.3f} |
""")


def templates_table(final, lines):
    rows = ["| system | GA, held out | GA | FGA | PA | FTA | reference: Drain, published GA |", "|---|---|---|---|---|---|---|"]
    for line in lines:
        if line.get("system") and line["system"] != "mean":
            rows.append(f"| {line['system']} | {line.get('cv_ga', 0):.3f} | {line['ga']:.3f} | {line['fga']:.3f} | {line['pa']:.3f} | {line['fta']:.3f} | {DRAIN_GA.get(line['system'], '')} |")
    rows.append(f"| **mean** | **{final.get('cv_ga', 0):.3f}** | **{final['ga']:.3f}** | {final['fga']:.3f} | {final['pa']:.3f} | {final['fta']:.3f} | 0.92 |")
    return (f"Loghub-2k with corrected labels. \"GA, held out\" is leave-one-system-out cross-validation: for each "
            f"system, the setting with the best mean GA on the other seven ({final.get('candidates', '?')} candidates: "
            f"similarity threshold, folding of value lists, masking) scored on it; the other columns are the shipped "
            f"setting ({final.get('setting', '?')}). Goals: held-out mean GA of at least 0.95 (the tests fail below "
            f"0.93); in-sample mean at least 0.95, no system below 0.90 (lowest here: {final['min_ga']:.3f}).\n\n"
            + "\n".join(rows))


section("Template accuracy", "eval-templates", templates_table)


def spikes_table(final, lines):
    rows = ["| profile | held out (cross-validated) | in sample |", "|---|---|---|"]
    for line in lines:
        if "profile" in line:
            bold = "**" if line["profile"] == "standard" else ""
            rows.append(f"| {line['profile']} | {bold}{line.get('cv_score', 0):.1f}{bold} | {line['score']:.1f} |")
    folds = ["| category held out | files | setting chosen on the other three | threshold | score on it |", "|---|---|---|---|---|"]
    for line in lines:
        if "held_out" in line:
            folds.append(f"| {line['held_out']} | {line['files']} | {line['setting']} | {line['threshold']:.4f} | {line['score']:.1f} |")
    reference = ", ".join(f"{name} {score}" for name, score in NAB_STANDARD)
    return (f"The detector's causal scores on the NAB series in the data set ({final.get('files', '?')} files in "
            f"{final.get('categories', '?')} categories), scored by Faultline's implementation of NAB's rules. \"Held out\" "
            f"leaves one category out at a time: the detector's setting ({final.get('candidates', '?')} candidates: novelty "
            f"gate and noise-level weight; the quiet period after an alert is fixed at 96 buckets, one alert per change, "
            f"and not fitted) and NAB's threshold are chosen on the other categories and scored on "
            f"it; the held-out raw scores are summed and normalised together. \"In sample\" is the shipped setting "
            f"({final.get('setting', '?')}) with the threshold chosen on all files, as NAB's scoreboard does. Goals: held "
            f"out at least 70 on the standard profile (the tests fail below 65). Reference, the NAB scoreboard's standard "
            f"profile on the full corpus of 58 series: {reference}.\n\n" + "\n".join(rows) + "\n\n" + "\n".join(folds))


section("Spike detection (NAB)", "eval-spikes", spikes_table)

def incidents_table(final, lines):
    kinds = ["| incident | caught | within 1 minute | mean delay (minutes) |", "|---|---|---|---|"]
    bands = ["| errors a minute | incidents | caught | spikes caught within 1 minute | the same, by the oracle | false alerts per service-day | alerts on pure-noise days |",
             "|---|---|---|---|---|---|---|"]
    for line in lines:
        if "kind" in line:
            kinds.append(f"| {line['kind']} | {line['recall']:.2f} | {line['within_1_bucket']:.2f} | {line['mean_delay_buckets']:.1f} |")
        if "errors_per_minute" in line:
            bands.append(f"| {line['errors_per_minute']} | {line['incidents']} | {line['recall']:.2f} | {line['spike_recall']:.2f} | "
                         f"{line.get('oracle_spike_recall', float('nan')):.2f} | "
                         f"{line['false_alerts_per_service_day']:.3f} | {line['noise_day_alerts']} |")
    oracle = final.get('oracle_spike_recall', float('nan'))
    return (f"The spike detector as the analysis runs it, on generated per-minute error counts (seed {final['seed']}): "
            f"{final['services']} services over {final['days']} days with base rates from 1 to 1,000 errors a minute, a daily "
            f"shape and overdispersed noise; one incident of each kind per service; a day of pure noise per service. "
            f"Goals: spikes of 3× or more caught within 1 minute ≥ 0.95, false alerts ≤ 0.05 per service-day, none on the "
            f"pure-noise days. The oracle knows every minute's true rate and the noise's law and tests each minute alone "
            f"at the detector's p-value: it catches {oracle:.3f} of the spikes. No detector does much better at that rate of "
            f"false alerts (summing two minutes, as the detector also does, gains a little); what both miss is hidden in "
            f"the noise, mostly below 10 errors a minute.\n\n"
            f"| spikes caught within 1 minute | by the oracle | recall, every incident | precision | mean delay | false alerts per service-day | alerts on pure-noise days |\n"
            f"|---|---|---|---|---|---|---|\n"
            f"| **{final['spike_recall']:.3f}** | {oracle:.3f} | {final['recall']:.3f} | {final['precision']:.3f} | {final['mean_delay_buckets']:.1f} min | "
            f"**{final['false_alerts_per_service_day']:.3f}** | **{final['noise_day_alerts']}** |\n\n"
            + "\n".join(kinds) + "\n\n" + "\n".join(bands))


section("Incidents in error counts", "eval-incidents", incidents_table)


def clusters_table(final, lines):
    rows = ["| cluster | title (busiest group's type and template) | true patterns | services | groups |", "|---|---|---|---|---|"]
    for line in lines:
        if "cluster" in line:
            rows.append(f"| {line['cluster']} | `{line['title']}` | {', '.join(line['patterns'])} | {', '.join(line['services'])} | {line['groups']} |")
    return (f"The pattern clusterer on one group per service and kind of the simulator's traffic ({final['groups']} groups, "
            f"{final['patterns']} true patterns; the outage and the leak reach every service). Goal: ARI ≥ 0.9. "
            f"ARI: **{final['ari']:.3f}** with {final['clusters']} clusters.\n\n" + "\n".join(rows))


section("Pattern clusters", "eval-clusters", clusters_table)

now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
text = f"""# Benchmarks

Written by `scripts/benchmarks` on {now} from release builds; every figure below is the final JSON
line of the command shown. Timings depend on the machine and on what else runs on it (the load
average before each run is given); accuracy figures do not.

## Machine

| | |
|---|---|
""" + "\n".join(f"| {key} | {value} |" for key, value in machine()) + "\n\n" + "\n".join(sections)
if missing:
    text += "\n## Not measured in this run\n\n" + "\n".join(f"- {title}" for title in missing) + "\n"
output.write_text(text)
