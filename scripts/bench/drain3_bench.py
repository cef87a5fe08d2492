"""Times Drain3's default TemplateMiner on messages read one per line.

Usage: python3 drain3_bench.py FILE [RUNS]. Each run uses a fresh TemplateMiner (default
configuration, no masking instructions); only the add_log_message loop is timed, in CPU time
of this thread (time.thread_time), so other load on the machine does not count. Prints the
median msgs/s of the runs as the last line.
"""
import statistics
import sys
import time

from drain3 import TemplateMiner


def main():
    with open(sys.argv[1], encoding="utf-8") as handle:
        messages = handle.read().split("\n")
    if messages and messages[-1] == "":
        messages.pop()
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    rates = []
    for _ in range(runs):
        miner = TemplateMiner()
        start = time.thread_time()
        for message in messages:
            miner.add_log_message(message)
        elapsed = time.thread_time() - start
        rates.append(len(messages) / elapsed)
        print(f"clusters {len(miner.drain.clusters)} messages {len(messages)} seconds {elapsed:.3f}", file=sys.stderr)
    print(f"{statistics.median(rates):.1f}")


if __name__ == "__main__":
    main()
