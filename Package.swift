// swift-tools-version:6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "mgpu",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "mgpu", targets: ["mgpu"]),
        .executable(name: "mgpu-supervise", targets: ["mgpu-supervise"]),
        .executable(name: "mgpu-bench", targets: ["MgpuBenchmarks"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        // NIOHTTPTypes, which Hummingbird already builds: the master's per-connection handler reads its parts.
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/google/swift-benchmark", from: "0.1.2"),
        // The agents' and clients' HTTP: connections kept across requests, deadlines, typed errors, TLS through NIOSSL.
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        // TLS for the API, the dashboard and agents (BoringSSL: minutes of build, once).
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        // The config file (mgpu.toml): a real TOML parser (toml++ underneath).
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        // Property-based tests of the request decoders (tests only).
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
    ],
    targets: [
        // Job, node and GPU model, the job state machine and the pure scheduler. No I/O.
        .target(name: "MgpuCore", swiftSettings: swiftSettings),
        // JSON types of the HTTP API shared by master, agent and client.
        .target(name: "MgpuWire", dependencies: ["MgpuCore"], swiftSettings: swiftSettings),
        // The per-job supervisor process and the posix_spawn helper (Glibc only, no Foundation).
        .target(name: "MgpuSupervisor", dependencies: ["CMgpuSpawn"], swiftSettings: swiftSettings),
        // A C shim for the glibc spawn extension Swift's Glibc module does not expose.
        .target(name: "CMgpuSpawn"),
        // A small HTTP/1.1 (optionally TLS) client over SwiftNIO used by the agent and the CLI.
        .target(name: "MgpuClient", dependencies: [
            "MgpuWire",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ], swiftSettings: swiftSettings),
        // The master: HTTP API, durable store, scheduling loop, node liveness.
        .target(name: "MgpuMaster", dependencies: [
            "MgpuCore", "MgpuWire", "CMgpuSpawn",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdCore", package: "hummingbird"),
            .product(name: "HummingbirdTLS", package: "hummingbird"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "Metrics", package: "swift-metrics"),
            // Job notifications (--notify URL): the master posts them.
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ], swiftSettings: swiftSettings),
        // The node agent: GPU discovery, job runner, supervisor adoption, sync with the master.
        .target(name: "MgpuAgent", dependencies: [
            "MgpuCore", "MgpuWire", "MgpuClient", "MgpuSupervisor",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ], swiftSettings: swiftSettings),
        // `mgpu relay`: a TCP bridge over SwiftNIO.
        .target(name: "MgpuRelay", dependencies: [
            .product(name: "HummingbirdCore", package: "hummingbird"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ], swiftSettings: swiftSettings),
        // The config file, mgpu.toml: its sections, keys named after the flags, and where each value came from.
        .target(name: "MgpuConfig", dependencies: [
            "MgpuCore", "MgpuWire", .product(name: "TOMLKit", package: "TOMLKit"),
        ], swiftSettings: swiftSettings),
        // The `mgpu` command line: every subcommand.
        .target(name: "MgpuCLI", dependencies: [
            "MgpuCore", "MgpuWire", "MgpuClient", "MgpuMaster", "MgpuAgent", "MgpuRelay", "MgpuConfig", "MgpuSupervisor", "CMgpuSpawn",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            // SIGHUP: the master reloads its config file's [policy].
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        ], swiftSettings: swiftSettings),
        .executableTarget(name: "mgpu", dependencies: ["CMgpuSpawn", "MgpuCLI", "MgpuSupervisor"], swiftSettings: swiftSettings),
        // The per-job supervisor alone (C only: no Swift runtime to load per job start); the agent uses it when it is
        // installed beside mgpu, else `mgpu _supervise`.
        .executableTarget(name: "mgpu-supervise", dependencies: ["CMgpuSpawn"]),

        // Microbenchmarks of the hot paths (google/swift-benchmark): the scheduling pass, the master's listings,
        // submissions and store commits, the sync answer's JSON, the table. `bench/run --scale` runs them.
        .executableTarget(name: "MgpuBenchmarks", dependencies: [
            "MgpuCore", "MgpuWire", "MgpuMaster", .product(name: "Benchmark", package: "swift-benchmark"),
        ], path: "Benchmarks/MgpuBenchmarks", swiftSettings: swiftSettings),

        .testTarget(name: "MgpuCoreTests", dependencies: ["MgpuCore"], swiftSettings: swiftSettings),
        .testTarget(name: "MgpuWireTests", dependencies: ["MgpuWire"], swiftSettings: swiftSettings),
        .testTarget(name: "MgpuConfigTests", dependencies: ["MgpuConfig", "MgpuCore"], swiftSettings: swiftSettings),
        .testTarget(name: "MgpuMasterTests", dependencies: [
            "MgpuMaster", "MgpuWire", "MgpuCore", .product(name: "PropertyBased", package: "swift-property-based"),
            .product(name: "GRDB", package: "GRDB.swift"),
        ], swiftSettings: swiftSettings),
        .testTarget(name: "MgpuAgentTests", dependencies: ["MgpuAgent"], exclude: ["Fixtures"], swiftSettings: swiftSettings),
        // Real processes: a master and agents started from the built `mgpu` binary, on loopback.
        .testTarget(name: "MgpuEndToEndTests", dependencies: ["mgpu", "MgpuCore", "MgpuWire", "MgpuClient", "MgpuSupervisor"],
                    exclude: ["Support/dashboard_browser.py", "Fixtures"], swiftSettings: swiftSettings),
    ]
)
