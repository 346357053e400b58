import NIOCore
import ShuttleModel
import ShuttleRuntime
import ShuttleTestSupport
import Testing

@Suite("HTTP virtual hosts: routing by the Host header")
struct VirtualHostRoutingTests {
    @Test("a request goes to the service named by its Host header, port stripped, case ignored")
    func routesByHost() async throws {
        let harness = try await HTTPHarness.start()
        let a = try await TestHTTPBackend.start(.named("a"), group: harness.group)
        let b = try await TestHTTPBackend.start(.named("b"), group: harness.group)
        try await harness.apply([
            vhostService("alpha", hosts: ["alpha.test"], backends: [backend("a1", a)]),
            vhostService("beta", hosts: ["Beta.Test", "*.wild.test"], backends: [backend("b1", b)]),
        ])
        #expect(try await harness.request(host: "alpha.test").text == "a")
        #expect(try await harness.request(host: "ALPHA.test:8080").text == "a")
        #expect(try await harness.request(host: "beta.test").text == "b")
        #expect(try await harness.request(host: "x.wild.test").text == "b")
        #expect(try await harness.request(host: "deep.x.wild.test").text == "b")
        await a.close()
        await b.close()
        await harness.shutdown()
    }

    @Test("an absolute-form target routes by its authority; two Host lines get 400, as Go's net/http answers")
    func absoluteFormAndTwoHosts() async throws {
        let harness = try await HTTPHarness.start()
        let a = try await TestHTTPBackend.start(.named("a"), group: harness.group)
        let b = try await TestHTTPBackend.start(.named("b"), group: harness.group)
        try await harness.apply([
            vhostService("alpha", hosts: ["alpha.test"], backends: [backend("a1", a)]),
            vhostService("beta", hosts: ["beta.test"], backends: [backend("b1", b)]),
        ])
        // The backend reads the target's authority too (RFC 9112 §3.2.2):
        // routing by Host would send it a request for a host it was not
        // chosen for.
        #expect(try await harness.request("GET", "http://beta.test/x", host: "alpha.test").text == "b")
        let twoHosts = try await harness.request(host: "alpha.test", headers: [("Host", "beta.test")])
        #expect(twoHosts.status == 400)
        #expect(a.connections == 0)
        #expect(b.requests.map(\.uri) == ["http://beta.test/x"])
        await a.close()
        await b.close()
        await harness.shutdown()
    }

    @Test("an unknown host gets 404 Not found and no backend is contacted")
    func unknownHost() async throws {
        let harness = try await HTTPHarness.start()
        let a = try await TestHTTPBackend.start(.named("a"), group: harness.group)
        try await harness.apply([vhostService("alpha", hosts: ["alpha.test"], backends: [backend("a1", a)])])
        let response = try await harness.request(host: "nobody.test")
        #expect(response.status == 404)
        #expect(response.text.hasPrefix("Not found"))
        #expect(a.connections == 0)
        await a.close()
        await harness.shutdown()
    }

    @Test("a missing or malformed Host header gets 400")
    func badHost() async throws {
        let harness = try await HTTPHarness.start()
        let a = try await TestHTTPBackend.start(.named("a"), group: harness.group)
        try await harness.apply([vhostService("alpha", hosts: ["alpha.test"], backends: [backend("a1", a)])])
        #expect(try await harness.request(host: nil).status == 400)
        #expect(try await harness.request(host: "alpha.test:port").status == 400)
        #expect(try await harness.request(host: "al pha.test").status == 400)
        // HTTP/1.0 without a Host header.
        let connection = try await harness.connect()
        try await connection.send("GET / HTTP/1.0\r\n\r\n")
        #expect(try await connection.readResponse().status == 400)
        await connection.close()
        #expect(a.connections == 0)
        await a.close()
        await harness.shutdown()
    }

    @Test("two services under one virtual host take turns")
    func servicesTakeTurns() async throws {
        let harness = try await HTTPHarness.start()
        let a = try await TestHTTPBackend.start(.named("a"), group: harness.group)
        let b = try await TestHTTPBackend.start(.named("b"), group: harness.group)
        try await harness.apply([
            vhostService("one", hosts: ["shared.test"], backends: [backend("a1", a)]),
            vhostService("two", hosts: ["shared.test"], backends: [backend("b1", b)]),
        ])
        let connection = try await harness.connect()
        var seen: [String] = []
        for _ in 0..<6 { seen.append(try await connection.request(host: "shared.test").text) }
        #expect(seen == ["a", "b", "a", "b", "a", "b"])
        await connection.close()
        await a.close()
        await b.close()
        await harness.shutdown()
    }

    @Test("a virtual host whose services have no backend up gets 503, counted as an error")
    func allServicesDown() async throws {
        let harness = try await HTTPHarness.start()
        let dead = try await TestBackend.refusingPort(group: harness.group)
        let check = try await TestBackend.refusingPort(group: harness.group)
        try await harness.apply([
            vhostService("down", hosts: ["down.test"], backends: [
                BackendConfig(name: "d1", address: "127.0.0.1:\(dead)", checkAddress: "127.0.0.1:\(check)")
            ]) { $0.checkInterval = 50; $0.fall = 1 }
        ])
        #expect(await eventually { harness.driver.read { $0.isUp(service: "down", backend: "d1") } == false })
        let response = try await harness.request(host: "down.test")
        #expect(response.status == 503)
        #expect(harness.stats("down")?.httpErrors == 1)
        await harness.shutdown()
    }

    @Test("a refused connect moves on to the next backend; none connecting is a 502")
    func connectFailover() async throws {
        let harness = try await HTTPHarness.start()
        let dead = try await TestBackend.refusingPort(group: harness.group)
        let live = try await TestHTTPBackend.start(.named("live"), group: harness.group)
        try await harness.apply([
            vhostService("f", hosts: ["f.test"], backends: [
                BackendConfig(name: "a-dead", address: "127.0.0.1:\(dead)"), backend("b-live", live),
            ]),
            vhostService("none", hosts: ["none.test"], backends: [BackendConfig(name: "x", address: "127.0.0.1:\(dead)")]),
        ])
        for _ in 0..<4 { #expect(try await harness.request(host: "f.test").text == "live") }
        #expect((harness.backendStats("f", "a-dead")?.errors ?? 0) >= 2)
        #expect(harness.stats("f")?.httpErrors == 0)

        let response = try await harness.request(host: "none.test")
        #expect(response.status == 502)
        #expect(harness.stats("none")?.httpErrors == 1)
        #expect(await eventually { harness.logLines().contains { $0.contains("status=502") && $0.contains("err=") && !$0.hasSuffix("err=\n") } })
        await live.close()
        await harness.shutdown()
    }
}

@Suite("HTTP metrics")
struct HTTPMetricsTests {
    @Test("/_metrics counts HTTP responses by status class and times requests and backend connects")
    func httpMetrics() async throws {
        let harness = try await HTTPHarness.start()
        let ok = try await TestHTTPBackend.start(.named("ok"), group: harness.group)
        let missing = try await TestHTTPBackend.start(.status(404, body: "no"), group: harness.group)
        try await harness.apply([
            vhostService("ok", hosts: ["ok.test"], backends: [backend("ok1", ok)]),
            vhostService("missing", hosts: ["missing.test"], backends: [backend("m1", missing)]),
        ])
        for _ in 0..<3 { #expect(try await harness.request(host: "ok.test").status == 200) }
        #expect(try await harness.request(host: "missing.test").status == 404)
        #expect(await eventually { harness.stats("ok")?.httpActive == 0 && harness.stats("missing")?.httpActive == 0 })
        let admin = try await harness.proxy.bindAdmin()
        let series = try scrape(admin)
        #expect(series[#"shuttle_http_responses_total{service="ok",code="2xx"}"#] == 3)
        #expect(series[#"shuttle_http_responses_total{service="missing",code="4xx"}"#] == 1)
        #expect(series[#"shuttle_service_http_requests_total{service="ok"}"#] == 3)
        #expect(series[#"shuttle_http_request_duration_seconds_count{service="ok"}"#] == 3)
        #expect((series[#"shuttle_backend_connect_duration_seconds_count{service="ok",backend="ok1"}"#] ?? 0) >= 1)
        await ok.close()
        await missing.close()
        await harness.shutdown()
    }
}
