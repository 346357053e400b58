import NIOCore
import ShuttleModel
import ShuttleRuntime
import ShuttleTestSupport
import Testing

@Suite("HTTP virtual hosts: error pages and maintenance mode")
struct ErrorPageTests {
    static let page = "<h1>We are sorry</h1><p>Something went wrong; try again soon.</p>"

    /// Waits until the proxy serves the page for `host`.
    func waitForPage(_ harness: HTTPHarness, host: String, expected: String = Self.page) async -> Bool {
        await eventuallyAsync { (try? await harness.request(host: host).text) == expected }
    }

    @Test("a backend answer with a listed status is replaced by the page, status kept, length its own")
    func backendStatus() async throws {
        let harness = try await HTTPHarness.start()
        let pages = try await TestHTTPBackend.start(.status(200, body: Self.page), group: harness.group)
        let failing = try await TestHTTPBackend.start(.status(500, body: "x"), group: harness.group)
        let notFound = try await TestHTTPBackend.start(.status(404, body: "no such thing"), group: harness.group)
        try await harness.apply([
            vhostService("e", hosts: ["e.test"], backends: [backend("a", failing)]) {
                $0.errorPages = ["http://\(pages.address)/500.html": [500, 502]]
            },
            vhostService("n", hosts: ["n.test"], backends: [backend("a", notFound)]) {
                $0.errorPages = ["http://\(pages.address)/500.html": [500]]
            },
        ])
        #expect(await waitForPage(harness, host: "e.test"))
        let connection = try await harness.connect()
        let response = try await connection.request(host: "e.test")
        #expect(response.status == 500)
        #expect(response.text == Self.page)
        #expect(response.header("content-length") == String(Self.page.utf8.count))
        #expect(response.header("content-type") == "text/plain")
        #expect(response.header("x-backend") == failing.address)
        // The connection is still in step: a shorter or longer page never
        // leaves the client waiting or reading the next answer as body.
        #expect(try await connection.request(host: "e.test").text == Self.page)
        // A status that is not listed passes as the backend sent it.
        #expect(try await connection.request(host: "n.test").text == "no such thing")
        await connection.close()
        for server in [pages, failing, notFound] { await server.close() }
        await harness.shutdown()
    }

    @Test("our own 502 and 503 are replaced by the service's pages")
    func ownErrors() async throws {
        let harness = try await HTTPHarness.start()
        let pages = try await TestHTTPBackend.start(.status(200, body: Self.page), group: harness.group)
        let dead = try await TestBackend.refusingPort(group: harness.group)
        try await harness.apply([
            vhostService("bad", hosts: ["bad.test"], backends: [BackendConfig(name: "d", address: "127.0.0.1:\(dead)")]) {
                $0.errorPages = ["http://\(pages.address)/5xx.html": [502, 503]]
            },
            vhostService("m", hosts: ["m.test"], backends: [BackendConfig(name: "d", address: "127.0.0.1:\(dead)")]) {
                $0.errorPages = ["http://\(pages.address)/5xx.html": [503]]
                $0.maintenanceMode = true
            },
        ])
        #expect(await eventuallyAsync { (try? await harness.request(host: "bad.test"))?.text == Self.page })
        #expect(try await harness.request(host: "bad.test").status == 502)
        let maintenance = try await harness.request(host: "m.test")
        #expect(maintenance.status == 503)
        #expect(maintenance.text == Self.page)
        await pages.close()
        await harness.shutdown()
    }

    @Test("maintenance mode answers 503 and contacts no backend")
    func maintenance() async throws {
        let harness = try await HTTPHarness.start()
        let server = try await TestHTTPBackend.start(.named("a"), group: harness.group)
        try await harness.apply([
            vhostService("m", hosts: ["m.test"], backends: [backend("a", server)]) { $0.maintenanceMode = true }
        ])
        let response = try await harness.request(host: "m.test")
        #expect(response.status == 503)
        #expect(server.connections == 0)
        // Turned off through the model, requests flow again.
        try await harness.apply(.upsertService(name: "m", ServiceUpdate(
            ServiceConfig(name: "m", address: "127.0.0.1:0", virtualHosts: ["m.test"], backends: [backend("a", server)], maintenanceMode: false))))
        #expect(try await harness.request(host: "m.test").text == "a")
        await server.close()
        await harness.shutdown()
    }

    @Test("a page that could not be fetched is fetched again later")
    func refetch() async throws {
        let harness = try await HTTPHarness.start()
        let pagePort = try await TestBackend.refusingPort(group: harness.group)
        let failing = try await TestHTTPBackend.start(.status(500, body: "x"), group: harness.group)
        try await harness.apply([
            vhostService("e", hosts: ["e.test"], backends: [backend("a", failing)]) {
                $0.errorPages = ["http://127.0.0.1:\(pagePort)/500.html": [500]]
            }
        ])
        // No page yet: the backend's answer passes, without waiting for a fetch.
        #expect(try await harness.request(host: "e.test").text == "x")
        TestBackend.release(refusingPort: pagePort)
        let pages = try await rebinding {
            try await TestHTTPBackend.start(.status(200, body: Self.page), group: harness.group, port: pagePort)
        }
        #expect(await waitForPage(harness, host: "e.test"))
        await pages.close()
        await failing.close()
        await harness.shutdown()
    }

    @Test("changing error_pages fetches the new pages")
    func updateRefetches() async throws {
        let harness = try await HTTPHarness.start()
        let first = try await TestHTTPBackend.start(.status(200, body: "first page"), group: harness.group)
        let second = try await TestHTTPBackend.start(.status(200, body: "second page"), group: harness.group)
        let failing = try await TestHTTPBackend.start(.status(500, body: "x"), group: harness.group)
        var service = vhostService("e", hosts: ["e.test"], backends: [backend("a", failing)]) {
            $0.errorPages = ["http://\(first.address)/p": [500]]
        }
        try await harness.apply([service])
        #expect(await waitForPage(harness, host: "e.test", expected: "first page"))
        service.errorPages = ["http://\(second.address)/p": [500]]
        try await harness.apply([service])
        #expect(await waitForPage(harness, host: "e.test", expected: "second page"))
        for server in [first, second, failing] { await server.close() }
        await harness.shutdown()
    }
}
