// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "faultline",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "faultline", targets: ["faultline"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // C libraries: module maps and shim headers only.
        .systemLibrary(name: "CRdKafka", pkgConfig: "rdkafka", providers: [.apt(["librdkafka-dev"])]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .target(name: "CLinuxShims"),
        // k-means's distance kernel, compiled for each vector unit (see its header).
        .target(name: "CVectorKernels", cSettings: [.unsafeFlags(["-O3", "-fno-math-errno"])]),

        // Wrappers: the only modules that import C.
        .target(name: "Posix", dependencies: ["CLinuxShims"]),
        .target(name: "Kafka", dependencies: [
            "CRdKafka", "Posix",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "Postgres", dependencies: [
            "CLibPQ", "Posix",
            .product(name: "Logging", package: "swift-log"),
        ]),

        // HTTP/1.1 on epoll and raw sockets; knows nothing of errors.
        .target(name: "HTTPServer", dependencies: [
            "Posix", "CLinuxShims", .product(name: "Logging", package: "swift-log"),
        ]),

        // Pure logic: no I/O, and no C but k-means's own distance kernel.
        .target(name: "Domain"),
        // Optimised in debug builds too: the tests hold the analysis's cross-validated accuracy,
        // which means mining and scoring whole labelled corpora several times over.
        .target(name: "Analysis", dependencies: ["Domain", "CVectorKernels"],
                swiftSettings: [.unsafeFlags(["-O"], .when(configuration: .debug))]),

        // Every SQL statement of the product.
        .target(name: "Storage", dependencies: [
            "Postgres", "Domain", .product(name: "Logging", package: "swift-log"),
        ]),
        // Webhook transport: libcurl and HMAC-SHA256 signing; knows nothing of alerts.
        .target(name: "HTTPClient", dependencies: ["CCurl", "COpenSSL"]),
        // Alert rules, payload formats, the outbox and its dispatcher.
        .target(name: "Alerts", dependencies: [
            "HTTPClient", "Storage", "Domain", "Postgres", "Posix",
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // The consumer loop.
        // Debug builds carry failpoints (`FAULTLINE_FAILPOINTS=decode-trap=TEXT`) for the
        // tests; a release build has none.
        .target(name: "Ingest", dependencies: [
            "Kafka", "Storage", "Domain", "Analysis", "Postgres",
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ], swiftSettings: [.define("FAULTLINE_FAILPOINTS", .when(configuration: .debug))]),

        // The periodic analysis: feeds the pure algorithms from PostgreSQL, writes insights.
        .target(name: "AnalysisJob", dependencies: [
            "Analysis", "Domain", "Storage", "Postgres", "Posix", "Alerts",
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),

        // REST handlers, auth and problem+json, independent of the HTTP server.
        .target(name: "API", dependencies: [
            "Storage", "Domain", "Analysis", "Postgres", "COpenSSL", .product(name: "Logging", package: "swift-log"),
        ], resources: [
            // The dashboard's files, compiled into the binary as byte arrays (PackageResources).
            .embedInCode("Dashboard/index.html"), .embedInCode("Dashboard/app.js"), .embedInCode("Dashboard/style.css"),
        ]),

        // Composition root and the executable.
        .target(name: "App", dependencies: [
            "Kafka", "Postgres", "Posix", "Domain", "Analysis", "AnalysisJob", "Ingest", "Storage", "API", "Alerts", "HTTPClient",
            "HTTPServer",
            .product(name: "Metrics", package: "swift-metrics"), .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // The demo, the traffic simulator, the benchmarks and the evaluations: tools the
        // executable offers beside `serve`, kept out of what `serve` runs.
        .target(name: "DevTools", dependencies: [
            "App", "Kafka", "Postgres", "Posix", "Domain", "Analysis", "AnalysisJob", "Ingest", "Storage", "API", "Alerts",
            "HTTPClient", "HTTPServer",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        .executableTarget(name: "faultline", dependencies: [
            "App", "DevTools", "Kafka", "Postgres",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),

        .target(name: "TestSupport", dependencies: [
            "Postgres", .product(name: "Logging", package: "swift-log"),
        ], path: "Tests/TestSupport"),
        .testTarget(name: "PosixTests", dependencies: ["Posix", "CLinuxShims"]),
        .testTarget(name: "DomainTests", dependencies: ["Domain"], exclude: ["Fixtures"]),
        .testTarget(name: "AnalysisTests", dependencies: ["Analysis", "Domain"]),
        .testTarget(name: "KafkaTests", dependencies: ["Kafka", "Posix", "TestSupport"]),
        .testTarget(name: "PostgresTests", dependencies: ["Postgres", "Posix", "TestSupport"]),
        .testTarget(name: "StorageTests", dependencies: ["Storage", "Postgres", "Domain", "TestSupport"]),
        .testTarget(name: "IngestTests", dependencies: ["Ingest", "Storage", "Kafka", "Postgres", "Posix", "Domain", "App", "DevTools", "TestSupport"]),
        .testTarget(name: "AnalysisJobTests", dependencies: ["AnalysisJob", "Analysis", "Storage", "Postgres", "Domain", "TestSupport"]),
        .testTarget(name: "HTTPServerTests", dependencies: ["HTTPServer", "Posix", "TestSupport"]),
        .testTarget(name: "APITests", dependencies: ["API", "Storage", "Postgres", "Domain", "Analysis", "TestSupport"]),
        .testTarget(name: "HTTPClientTests", dependencies: ["HTTPClient", "Posix"]),
        .testTarget(name: "AlertsTests", dependencies: [
            "Alerts", "API", "HTTPClient", "AnalysisJob", "Analysis", "Storage", "Postgres", "Domain", "App", "DevTools", "Kafka", "TestSupport",
        ], exclude: ["receiver.py"]),
        .testTarget(name: "AppTests", dependencies: ["App", "DevTools", "API", "Analysis", "Domain", "Kafka", "Posix", "Postgres", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
