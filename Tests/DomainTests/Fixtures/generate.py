#!/usr/bin/env python3
"""Writes the producer fixtures of DomainTests with the producer libraries themselves.

Nothing here writes event JSON by hand: the OTLP/JSON comes from the OpenTelemetry Python SDK's
logging handler and its JSON file exporter, the CLEF from seqlog as it would POST it to Seq, the
Java and Node.js traces from running javac/java and node. Only the .NET and Go traces are typed
by hand (no dotnet or go on the machines), after the formats those runtimes document; their file
names say "handwritten".

    pip install opentelemetry-sdk==1.45.2 opentelemetry-exporter-otlp-json-file==0.66b1 seqlog==0.4.3
    python3 Tests/DomainTests/Fixtures/generate.py      # needs javac, java (17) and node (20)

Deterministic where the libraries allow it:
- the log records' time is pinned by a logging.Filter (CLOCK below); the SDK's observed time
  (`time_ns()` inside the handler) is pinned by replacing that name in the SDK module;
- the Python "application" is compiled from the strings below under fixed file names, and its
  source registered with linecache, so tracebacks show fixed paths and real source lines
  (with Python 3.11's ^^^^ position markers);
- seqlog's default global properties (host name, process id) and its per-record ThreadId are
  replaced through seqlog.set_global_log_properties, as an application would set them;
- seqlog writes `@t` in local time: TZ is set to CET-1 (a fixed +01:00) before it runs;
- the OTLP resource is built with Resource.create, so the telemetry.sdk.* attributes follow the
  installed SDK's version.
"""

import http.server
import json
import linecache
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = Path("/tmp/faultline-fixtures")
# 2026-11-22T04:50:32.123456Z, the time the Swift tests take as "now" (give or take a minute).
CLOCK = 1_795_323_032.123456

os.environ["TZ"] = "CET-1"
time.tzset()
for name in list(os.environ):
    if name.startswith("OTEL_"):
        del os.environ[name]


class FixedClock(logging.Filter):
    """Gives every record the same creation time (filters may change records)."""

    def filter(self, record):
        record.created = CLOCK
        record.msecs = (CLOCK - int(CLOCK)) * 1000
        record.relativeCreated = 1000.0
        return True


def load_module(name, filename, source):
    """Compiles `source` as module `name` living at `filename`, with its lines known to tracebacks."""
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    module = type(sys)(name)
    module.__file__ = filename
    sys.modules[name] = module
    exec(compile(source, filename, "exec"), module.__dict__)
    return module


# MARK: - OpenTelemetry: OTLP/JSON from the SDK's LoggingHandler and FileLogExporter

CHECKOUT_ORDERS = '''\
"""Order handling of the checkout service (fixture source, compiled by generate.py)."""
import logging

log = logging.getLogger("checkout.orders")


class PaymentError(Exception):
    """The payment provider refused a charge."""


def customer_of(order):
    return order["customer"]


def charge(order):
    try:
        return customer_of(order)
    except KeyError as error:
        raise PaymentError(f"order {order['id']} has no customer to charge") from error


def handle(order):
    log.info("charging order %s", order["id"])
    try:
        charge(order)
    except PaymentError:
        log.exception("charge failed for order %s", order["id"])
    log.warning("payment provider answered in %d ms", 5012)
'''


def otlp_fixture():
    import warnings

    from opentelemetry.exporter.otlp.json.file._log_exporter import FileLogExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs import _internal as sdk_logs
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    sdk_logs.time_ns = lambda: int(CLOCK * 1e9) + 250_000_000  # observedTimeUnixNano
    path = HERE / "otlp-python-logs.json"
    with open(path, "w", encoding="utf-8") as stream:
        resource = Resource.create({
            "service.name": "checkout",
            "service.version": "1.8.3",
            "deployment.environment": "staging",
            # Otherwise the SDK adds a random UUID v4 here.
            "service.instance.id": "checkout-7f9c4d-x2k8p",
        })
        provider = LoggerProvider(resource=resource)
        # One batch: the three records make one export, one line, one Kafka message.
        provider.add_log_record_processor(BatchLogRecordProcessor(FileLogExporter(stream=stream)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            handler = LoggingHandler(level=logging.NOTSET, logger_provider=provider)
        handler.addFilter(FixedClock())
        logger = logging.getLogger("checkout.orders")
        logger.setLevel(logging.INFO)
        logger.propagate = False
        logger.addHandler(handler)

        orders = load_module("checkout.orders", "/srv/checkout/checkout/orders.py", CHECKOUT_ORDERS)
        orders.handle({"id": "o-1001"})

        provider.force_flush()
        provider.shutdown()
        logger.removeHandler(handler)
    print("wrote", path.name)


# MARK: - seqlog: CLEF as it is POSTed to Seq's /ingest/clef

BILLING_INVOICES = '''\
"""Invoices of the billing service (fixture source, compiled by generate.py)."""
import logging

from invoicing.render import render

log = logging.getLogger("billing.invoices")


def customer_of(invoice):
    return invoice["customer"]


def send_invoice(invoice):
    try:
        render(invoice, customer_of)
    except KeyError:
        log.error("Invoice {InvoiceId} could not be sent", InvoiceId=invoice["id"], exc_info=True)
    log.warning("Mail relay answered in {ElapsedMs} ms", ElapsedMs=5012)
    log.info("Invoice {InvoiceId} queued", InvoiceId=invoice["id"])
'''

# A third-party library between two application frames (a frame that is not in-app).
INVOICING_RENDER = '''\
"""A template library (fixture source, compiled by generate.py)."""


def render(document, lookup):
    fields = {"to": lookup(document)}
    return fields
'''


class SeqCapture(http.server.BaseHTTPRequestHandler):
    """Stands in for Seq: keeps the bodies posted to /ingest/clef."""

    bodies = []
    disable_nagle_algorithm = True

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        SeqCapture.bodies.append((self.path, self.headers.get("Content-Type"), self.rfile.read(length)))
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def clef_fixture():
    import seqlog

    server = http.server.HTTPServer(("127.0.0.1", 0), SeqCapture)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    seqlog.set_global_log_properties(
        Application="billing", Environment="production", Version="2026.11.3",
        MachineName="billing-7c9f", ProcessId=4242, ThreadId=140245637420864,
    )
    # batch_size 3: the three records go out in one POST, with no timer involved.
    handler = seqlog.log_to_seq(f"http://127.0.0.1:{server.server_address[1]}", level=logging.INFO,
                                batch_size=3, auto_flush_timeout=None, use_clef=True)
    handler.addFilter(FixedClock())

    load_module("invoicing", "/srv/billing/.venv/lib/python3.11/site-packages/invoicing/__init__.py", "")
    load_module("invoicing.render", "/srv/billing/.venv/lib/python3.11/site-packages/invoicing/render.py",
                INVOICING_RENDER)
    invoices = load_module("billing.invoices", "/srv/billing/billing/invoices.py", BILLING_INVOICES)
    invoices.send_invoice({"id": "inv-2026-0042"})

    deadline = time.monotonic() + 10
    while not SeqCapture.bodies and time.monotonic() < deadline:
        time.sleep(0.05)
    handler.close()
    server.shutdown()
    if len(SeqCapture.bodies) != 1:
        sys.exit(f"expected one POST from seqlog, got {len(SeqCapture.bodies)}")
    route, content_type, body = SeqCapture.bodies[0]
    assert route == "/ingest/clef" and content_type == "application/vnd.serilog.clef", (route, content_type)
    # Exactly the bytes seqlog posted (events joined by CRLF, no final newline).
    path = HERE / "clef-seqlog.clef"
    path.write_bytes(body)
    print("wrote", path.name)


# MARK: - Java and Node.js: traces from the runtimes

JAVA_SOURCE = '''\
package com.shop.orders;

public final class OrderService {
    static int quantity(String text) {
        return Integer.parseInt(text);
    }

    static void charge(String orderId, String quantityText) {
        try {
            quantity(quantityText);
        } catch (NumberFormatException e) {
            throw new IllegalStateException("order " + orderId + " cannot be charged", e);
        }
    }

    public static void main(String[] args) {
        try {
            charge("o-1001", "12x");
        } catch (IllegalStateException e) {
            e.printStackTrace(System.out);
        }
    }
}
'''

NODE_SOURCE = '''\
'use strict';

function customerId(order) {
  return order.customer.id;
}

function ids(orders) {
  return orders.map(customerId);
}

try {
  ids([{ id: 'o-1001' }]);
} catch (err) {
  process.stdout.write(err.stack + '\\n');
}
'''

# After an await, V8 writes the awaiting callers as "at async name (...)".
NODE_ASYNC_SOURCE = '''\
'use strict';

async function loadCustomer(order) {
  await Promise.resolve();
  return order.customer.id;
}

async function handle(order) {
  const id = await loadCustomer(order);
  return id;
}

handle({ id: 'o-1001' }).catch((err) => process.stdout.write(err.stack + '\\n'));
'''


def run(command, cwd):
    return subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True).stdout


def java_fixture():
    source = WORK / "java" / "com" / "shop" / "orders" / "OrderService.java"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(JAVA_SOURCE)
    run(["javac", "-d", str(WORK / "java" / "classes"), str(source)], WORK)
    trace = run(["java", "-cp", str(WORK / "java" / "classes"), "com.shop.orders.OrderService"], WORK)
    (HERE / "trace-java.txt").write_text(trace)
    print("wrote trace-java.txt")


def node_fixture():
    source = WORK / "shop" / "orders.js"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(NODE_SOURCE)
    trace = run(["node", str(source)], WORK)
    (HERE / "trace-node.txt").write_text(trace)
    source = WORK / "shop" / "handler.js"
    source.write_text(NODE_ASYNC_SOURCE)
    trace = run(["node", str(source)], WORK)
    (HERE / "trace-node-async.txt").write_text(trace)
    print("wrote trace-node.txt trace-node-async.txt")


# MARK: - .NET and Go: typed by hand (no runtime here), in the formats the runtimes print

# Exception.ToString() of .NET 6+: the outer type and message, each inner exception on a line
# starting " ---> ", the inner frames, "--- End of inner exception stack trace ---", the outer
# frames; frames with symbols end "in <file>:line <n>". SocketException prints its native code.
DOTNET_TRACE = '''\
System.InvalidOperationException: Could not charge order o-1001
 ---> System.Net.Http.HttpRequestException: Connection refused (payments:443)
 ---> System.Net.Sockets.SocketException (111): Connection refused
   at System.Net.Sockets.Socket.AwaitableSocketAsyncEventArgs.ThrowException(SocketError error, CancellationToken cancellationToken)
   at System.Net.Http.HttpConnectionPool.ConnectToTcpHostAsync(String host, Int32 port, HttpRequestMessage initialRequest, Boolean async, CancellationToken cancellationToken)
   --- End of inner exception stack trace ---
   at System.Net.Http.HttpConnectionPool.ConnectToTcpHostAsync(String host, Int32 port, HttpRequestMessage initialRequest, Boolean async, CancellationToken cancellationToken)
   at Shop.Payments.PaymentClient.ChargeAsync(Order order, CancellationToken cancellationToken) in /src/Shop.Payments/PaymentClient.cs:line 57
   --- End of inner exception stack trace ---
   at Shop.Orders.OrderService.ChargeAsync(Order order) in /src/Shop.Orders/OrderService.cs:line 31
--- End of stack trace from previous location ---
   at Shop.Orders.OrdersController.Post(OrderRequest request) in /src/Shop.Orders/OrdersController.cs:line 24
'''

# A Go 1.21+ panic as printed to stderr: the panic line, the goroutine, each frame as the function
# with its arguments (or "(...)" when inlined) and then a tab-indented "file:line +offset".
GO_TRACE = '''\
panic: runtime error: index out of range [5] with length 3

goroutine 7 [running]:
main.lineItem(...)
\t/src/shop/orders.go:21
main.(*Worker).process(0xc000012030, {0xc00001a0a0, 0x3, 0x4})
\t/src/shop/orders.go:34 +0x1c5
github.com/acme/queue.(*Consumer).Run(0xc00007e060, 0xc000010018)
\t/root/go/pkg/mod/github.com/acme/queue@v1.4.2/consumer.go:88 +0x8e
created by main.main in goroutine 1
\t/src/shop/main.go:12 +0x5e
exit status 2
'''


def handwritten_fixtures():
    (HERE / "trace-dotnet.handwritten.txt").write_text(DOTNET_TRACE)
    (HERE / "trace-go.handwritten.txt").write_text(GO_TRACE)
    print("wrote trace-dotnet.handwritten.txt trace-go.handwritten.txt")


if __name__ == "__main__":
    shutil.rmtree(WORK, ignore_errors=True)
    otlp_fixture()
    clef_fixture()
    java_fixture()
    node_fixture()
    handwritten_fixtures()
