import Benchmark
import ShuttleModel

// The model's hot path, the work it does for every new connection or
// request: the registry's events for one connection, a balancer's choice,
// a virtual host's lookup. Results are per call (the inner loop is scaled
// out); the targets are at most 100 ns and no allocation per choice.

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal, .instructions, .throughput],
        timeUnits: .nanoseconds,
        warmupIterations: 3,
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 1_000
    )

    // A TCP service's connection as the runtime reports it.
    for backends in [2, 16] {
        Benchmark("Registry clientConnected+connectionClosed, RR, \(backends) backends") { benchmark in
            var fixture = RegistryFixture(backends: backends)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                let id = fixture.nextConnection()
                blackHole(fixture.registry.handle(.clientConnected(id, listener: fixture.listener, key: fixture.key)))
                blackHole(fixture.registry.handle(.connectionClosed(id)))
            }
        }
    }
    Benchmark("Registry.place+connectionClosed, RR, 2 backends") { benchmark in
        var fixture = RegistryFixture(backends: 2)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            let id = fixture.nextConnection()
            blackHole(fixture.registry.place(id, listener: fixture.listener, key: fixture.key))
            blackHole(fixture.registry.handle(.connectionClosed(id)))
        }
    }
    Benchmark("Registry TCP connection lifecycle (4 events), RR, 2 backends") { benchmark in
        var fixture = RegistryFixture(backends: 2)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            let id = fixture.nextConnection()
            blackHole(fixture.registry.handle(.clientConnected(id, listener: fixture.listener, key: fixture.key)))
            blackHole(fixture.registry.handle(.backendConnected(id)))
            blackHole(fixture.registry.handle(.bytesTransferred(id, sent: 100, received: 1000)))
            blackHole(fixture.registry.handle(.connectionClosed(id)))
        }
    }

    // A keep-alive HTTP request as the runtime reports it: routed by its
    // Host header, placed, its backend connection reused, answered.
    Benchmark("Registry HTTP request lifecycle (3 events), RR, 2 backends") { benchmark in
        var fixture = RegistryFixture(backends: 2)
        let request = HTTPRequest(host: "bench.local", uri: "/small")
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            let id = fixture.nextConnection()
            blackHole(fixture.registry.handle(.requestReceived(id, request)))
            blackHole(fixture.registry.handle(.backendConnected(id)))
            blackHole(fixture.registry.handle(.requestFinished(id, .responded(status: 200))))
        }
    }

    // The balancers alone, on a plain backend list.
    let methods: [(String, Balance)] = [
        ("RR", .roundRobin), ("LC", .leastConnections), ("P2C", .powerOfTwoChoices), ("HASH", .consistentHash),
    ]
    for (label, method) in methods {
        for count in [2, 16] {
            Benchmark("Balancer.choose \(label), \(count) backends") { benchmark in
                let backends = (0..<count).map { BackendLoad(name: "backend-\($0)", weight: 1 + $0 % 3, active: $0 % 5) }
                var balancer = Balancer()
                balancer.backendsChanged(backends)
                var random = SeededGenerator(seed: 1)
                var key: UInt64 = 0
                benchmark.startMeasurement()
                for _ in benchmark.scaledIterations {
                    key &+= 0x9e37_79b9
                    blackHole(balancer.choose(method, backends, key: BalanceKey(key), random: &random))
                }
            }
        }
    }

    // Picking the service for an HTTP request's Host header.
    Benchmark("Registry.routeVirtualHost, exact name") { benchmark in
        var fixture = RegistryFixture(backends: 2)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(fixture.registry.routeVirtualHost("bench.local"))
        }
    }
    Benchmark("Registry.routeVirtualHost, wildcard name with port") { benchmark in
        var fixture = RegistryFixture(backends: 2)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(fixture.registry.routeVirtualHost("api.wild.example:8080"))
        }
    }
}

/// A registry with one committed TCP service of `backends` backends (with
/// virtual hosts), as the runtime would have it after start-up.
struct RegistryFixture {
    var registry = Registry(seed: 1)
    let listener: ListenerID
    let key = BalanceKey("127.0.0.1")
    var connection: UInt64 = 0

    init(backends: Int) {
        let service = ServiceConfig(
            name: "web", address: "127.0.0.1:8080", balance: "RR", virtualHosts: ["bench.local", "*.wild.example"],
            backends: (0..<backends).map { BackendConfig(name: "web-\($0)", address: "127.0.0.1:\(9000 + $0)") })
        var pending = registry.handle(.admin(RequestID(1), .updateConfig(ConfigUpdate(Config(services: [service])))))
        while let action = pending.first {
            pending.removeFirst()
            if case .bindListener(let listener) = action {
                pending += registry.handle(.listenerBound(listener.id, address: listener.address))
            }
        }
        guard let (listener, _) = registry.listener(ofService: "web") else { fatalError("the service did not start") }
        self.listener = listener.id
    }

    mutating func nextConnection() -> ConnectionID {
        connection += 1
        return ConnectionID(connection)
    }
}
