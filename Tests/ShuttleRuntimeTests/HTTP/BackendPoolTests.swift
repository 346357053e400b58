import NIOConcurrencyHelpers
import NIOCore
import ShuttleModel
@testable import ShuttleRuntime
import ShuttleTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("HTTP virtual hosts: keep-alive connections to backends")
struct BackendPoolTests {
    @Test("many sequential requests reuse a few backend connections")
    func reuse() async throws {
        let harness = try await HTTPHarness.start()
        let server = try await TestHTTPBackend.start(.named("a"), group: harness.group)
        try await harness.apply([vhostService("p", hosts: ["p.test"], backends: [backend("a", server)])])
        // On one client connection: one backend connection.
        let connection = try await harness.connect()
        for _ in 0..<30 { #expect(try await connection.request(host: "p.test").text == "a") }
        await connection.close()
        #expect(server.connections == 1)
        // On a new client connection per request: at most one per event loop.
        for _ in 0..<30 { #expect(try await harness.request(host: "p.test").text == "a") }
        #expect(server.connections <= harness.group.makeIterator().reduce(0) { n, _ in n + 1 })
        #expect(harness.stats("p")?.httpConnections == 60)
        await server.close()
        await harness.shutdown()
    }

    @Test("the idle connections to a backend that leaves the config are closed at once, not after the idle timeout")
    func retiredBackendsIdleConnectionsClose() async throws {
        let harness = try await HTTPHarness.start()
        let first = try await TestHTTPBackend.start(.named("first"), group: harness.group)
        let second = try await TestHTTPBackend.start(.named("second"), group: harness.group)
        let other = try await TestHTTPBackend.start(.named("other"), group: harness.group)
        let others = vhostService("o", hosts: ["o.test"], backends: [backend("x", other)])
        try await harness.apply([vhostService("r", hosts: ["r.test"], backends: [backend("a", first)]), others])
        let connection = try await harness.connect()
        for _ in 0..<3 { #expect(try await connection.request(host: "r.test").text == "first") }
        #expect(try await connection.request(host: "o.test").text == "other")
        await connection.close()
        #expect(first.openConnections == 1, "kept for the next request")

        // Backend a moves to another address: a new backend, the old one's connection closes.
        try await harness.apply([vhostService("r", hosts: ["r.test"], backends: [backend("a", second)]), others])
        #expect(await eventually { first.openConnections == 0 }, "\(first.openConnections) still open")
        #expect(try await harness.request(host: "r.test").text == "second")
        #expect(await eventually { second.openConnections == 1 })

        // The service goes: its backend's connection closes; the other service's stays.
        try await harness.apply(.removeService(name: "r"))
        #expect(await eventually { second.openConnections == 0 }, "\(second.openConnections) still open")
        #expect(other.openConnections == 1)
        for server in [first, second, other] { await server.close() }
        await harness.shutdown()
    }

    @Test("a connection in use when its backend leaves the config is closed once its answer is through, not pooled")
    func retiredWhileInUse() async throws {
        let harness = try await HTTPHarness.start()
        let (listener, port) = try RawSocket.listen()
        let answer = NIOLockedValueBox(false)
        // The backend answers when the test says so, then reads until the
        // proxy closes (a read gives up after 30 s: the idle sweep is 60 s).
        let backendSide = Task {
            try await onThread { () -> [UInt8] in
                let fd = try RawSocket.accept(listener)
                defer { close(fd) }
                _ = try RawSocket.read(fd)
                // At most a minute, should the test stop before it says so.
                let deadline = ContinuousClock.now + .seconds(60)
                while !answer.withLockedValue({ $0 }) && ContinuousClock.now < deadline { usleep(1_000) }
                try RawSocket.send(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                return try RawSocket.readToEnd(fd)
            }
        }
        try await harness.apply([
            vhostService("w", hosts: ["w.test"], backends: [BackendConfig(name: "a", address: "127.0.0.1:\(port)")])
        ])
        let connection = try await harness.connect()
        try await connection.send(HTTPRequestText.make(host: "w.test"))
        #expect(await eventually { harness.backendStats("w", "a")?.httpActive == 1 })
        try await harness.apply(.removeService(name: "w"))
        answer.withLockedValue { $0 = true }
        #expect(try await connection.readResponse().text == "ok", "a request in flight finishes")
        #expect(try await backendSide.value.isEmpty, "the proxy closed the connection without another request")
        close(listener)
        await connection.close()
        await harness.shutdown()
    }

    #if os(Linux)
    @Test("the relay's pool keeps a retired backend's marker for the idle timeout, then forgets it")
    func relayPoolForgetsRetiredBackends() {
        let pool = HTTPRelayPool()
        let start: UInt64 = 1_000_000_000
        pool.retire(BackendID(7), now: start)
        pool.sweep(start + HTTPRelayPool.idleTimeout - 1)
        #expect(pool.knownBackends == 1, "a connection in use may still come back")
        pool.sweep(start + HTTPRelayPool.idleTimeout)
        #expect(pool.knownBackends == 0)
    }
    #endif

    @Test("a backend that closes connections after answering causes no client errors")
    func backendClosesIdleConnections() async throws {
        let harness = try await HTTPHarness.start()
        let server = try await TestHTTPBackend.start(.closeAfterResponse("a"), group: harness.group)
        try await harness.apply([vhostService("c", hosts: ["c.test"], backends: [backend("a", server)])])
        let connection = try await harness.connect()
        for i in 0..<40 {
            let response = try await connection.request(host: "c.test")
            #expect(response.status == 200, "request \(i)")
            #expect(response.text == "a")
            if i % 4 == 0 { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(harness.stats("c")?.httpErrors == 0)
        await connection.close()
        await server.close()
        await harness.shutdown()
    }

    @Test("an idempotent request that fails on a reused connection is retried once on a fresh one")
    func retryOnReusedConnection() async throws {
        let harness = try await HTTPHarness.start()
        let server = try await TestHTTPBackend.start(.oneRequestPerConnection("a"), group: harness.group)
        try await harness.apply([vhostService("r", hosts: ["r.test"], backends: [backend("a", server)])])
        let connection = try await harness.connect()
        for _ in 0..<5 {
            #expect(try await connection.request(host: "r.test").text == "a")
        }
        // PUT is idempotent too, with a small body kept for the retry.
        #expect(try await connection.request("PUT", "/x", host: "r.test", body: "again").text == "a")
        #expect(harness.stats("r")?.httpErrors == 0)
        #expect(server.connections >= 6)
        await connection.close()
        await server.close()
        await harness.shutdown()
    }

    @Test("a POST that fails on a reused connection is not sent again: 502")
    func noRetryForPost() async throws {
        let harness = try await HTTPHarness.start()
        let server = try await TestHTTPBackend.start(.oneRequestPerConnection("a"), group: harness.group)
        try await harness.apply([vhostService("r", hosts: ["r.test"], backends: [backend("a", server)])])
        let connection = try await harness.connect()
        #expect(try await connection.request(host: "r.test").text == "a")
        let response = try await connection.request("POST", "/order", host: "r.test", body: "once")
        #expect(response.status == 502)
        let posts = server.requests.filter { $0.method == .POST }
        #expect(posts.count == 1)
        #expect(harness.stats("r")?.httpErrors == 1)
        await connection.close()
        await server.close()
        await harness.shutdown()
    }

    @Test("a sweep closes the backend connections idle for the pool's timeout, and the next request connects anew")
    func idleConnectionsAreSwept() async throws {
        // NIO's pool (the epoll relay's is HTTPRelayPool).
        let harness = try await HTTPHarness.start(relay: .nio)
        let server = try await TestHTTPBackend.start(.named("a"), group: harness.group)
        try await harness.apply([vhostService("i", hosts: ["i.test"], backends: [backend("a", server)])])
        let loops = Array(harness.group.makeIterator())
        /// Sweeps every pool as if it were `now`, and counts what is left.
        func sweepAndCount(at now: NIODeadline) async -> Int {
            var total = 0
            for loop in loops {
                let pool = harness.frontend.pool(for: loop)
                total += (try? await loop.submit { () -> Int in
                    pool?.sweep(now: now)
                    return pool?.idleCount ?? 0
                }.get()) ?? 0
            }
            return total
        }
        // The connection goes idle after `before` and before `after`.
        let before = NIODeadline.now()
        #expect(try await harness.request(host: "i.test").text == "a")
        #expect(await eventuallyAsync { await sweepAndCount(at: .now()) == 1 }, "the connection waits in its pool")
        let after = NIODeadline.now()
        #expect(await sweepAndCount(at: before + BackendPool.idleTimeout - .milliseconds(1)) == 1, "not idle long enough")
        #expect(await sweepAndCount(at: after + BackendPool.idleTimeout) == 0, "closed once idle for the timeout")
        #expect(try await harness.request(host: "i.test").text == "a")
        #expect(server.connections == 2)
        await server.close()
        await harness.shutdown()
    }
}
