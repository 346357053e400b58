import Foundation
import NIOCore
import ShuttleModel
import ShuttleRuntime
import ShuttleTestSupport
import Testing

@Suite("HTTP virtual hosts: redirect to https")
struct HTTPSRedirectTests {
    @Test("a service's https-redirect answers plain HTTP with 301 to https://HOST/URI")
    func serviceRedirect() async throws {
        let harness = try await HTTPHarness.start(settings: ProxySettings(httpsPort: 443))
        let server = try await TestHTTPBackend.start(.named("a"), group: harness.group)
        try await harness.apply([
            vhostService("r", hosts: ["r.test"], backends: [backend("a", server)]) { $0.httpsRedirect = true }
        ])
        let response = try await harness.request("GET", "/a/b?c=d", host: "r.test:8080")
        #expect(response.status == 301)
        #expect(response.header("location") == "https://r.test/a/b?c=d")
        #expect(server.connections == 0)
        await server.close()
        await harness.shutdown()
    }

    @Test("the location carries the https listener's port when it is not 443")
    func redirectPort() async throws {
        let harness = try await HTTPHarness.start(settings: ProxySettings(httpsPort: 8443))
        let server = try await TestHTTPBackend.start(.named("a"), group: harness.group)
        try await harness.apply([
            vhostService("r", hosts: ["r.test"], backends: [backend("a", server)]) { $0.httpsRedirect = true }
        ])
        #expect(try await harness.request("GET", "/x", host: "r.test").header("location") == "https://r.test:8443/x")
        await server.close()
        await harness.shutdown()
    }

    @Test("no redirect for a request carrying X-Forwarded-Proto: https")
    func forwardedHTTPS() async throws {
        let harness = try await HTTPHarness.start()
        let server = try await TestHTTPBackend.start(.named("a"), group: harness.group)
        try await harness.apply([
            vhostService("r", hosts: ["r.test"], backends: [backend("a", server)]) { $0.httpsRedirect = true }
        ])
        let response = try await harness.request(host: "r.test", headers: [("X-Forwarded-Proto", "https")])
        #expect(response.status == 200)
        #expect(response.text == "a")
        await server.close()
        await harness.shutdown()
    }

    @Test("the -https-redirect flag and the config's global https-redirect redirect every virtual host")
    func globalRedirect() async throws {
        let flagged = try await HTTPHarness.start(settings: ProxySettings(httpsRedirect: true))
        let first = try await TestHTTPBackend.start(.named("a"), group: flagged.group)
        try await flagged.apply([vhostService("r", hosts: ["r.test"], backends: [backend("a", first)])])
        #expect(try await flagged.request(host: "r.test").status == 301)
        await first.close()
        await flagged.shutdown()

        let configured = try await HTTPHarness.start()
        let second = try await TestHTTPBackend.start(.named("a"), group: configured.group)
        try await configured.apply(
            [vhostService("r", hosts: ["r.test"], backends: [backend("a", second)])], global: Config(httpsRedirect: true))
        #expect(try await configured.request(host: "r.test").status == 301)
        #expect(second.connections == 0)
        await second.close()
        await configured.shutdown()
    }

    @Test("no redirect for a request that came over TLS")
    func noRedirectOverTLS() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try TestCertificate.write(file: "r", dnsNames: ["r.test"], to: directory)
        let harness = try await HTTPHarness.start(settings: ProxySettings(httpsRedirect: true), certificates: directory)
        let server = try await TestHTTPBackend.start(.named("a"), group: harness.group)
        try await harness.apply([
            vhostService("r", hosts: ["r.test"], backends: [backend("a", server)]) { $0.httpsRedirect = true }
        ])
        let connection = try await harness.connectTLS(serverName: "r.test")
        let response = try await connection.request(host: "r.test")
        #expect(response.status == 200)
        #expect(server.requests.first?.headers["x-forwarded-proto"] == ["https"])
        await connection.close()
        #expect(try await harness.request(host: "r.test").status == 301)
        await server.close()
        await harness.shutdown()
    }
}
