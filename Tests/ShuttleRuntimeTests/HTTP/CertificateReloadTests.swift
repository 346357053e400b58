import Foundation
import NIOCore
import ShuttleModel
import ShuttleRuntime
import ShuttleTestSupport
import Testing

@Suite("HTTPS: certificates reload without a restart")
struct CertificateReloadTests {
    @Test("POST /_certs/reload serves the new certificates; an open connection lives on with its own")
    func adminReload() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let before = try TestCertificate.write(file: "site", dnsNames: ["site.test"], to: directory)
        let harness = try await HTTPHarness.start(certificates: directory)
        let store = try #require(harness.certificates)
        harness.driver.certificateReloader.withLockedValue { $0 = { try store.reload() } }
        let admin = try await AdminServer.bind("127.0.0.1:0", driver: harness.driver).get()
        let adminPort = admin.localAddress!.port!
        let server = try await TestHTTPBackend.start(.named("a"), group: harness.group)
        try await harness.apply([vhostService("s", hosts: ["site.test"], backends: [backend("a", server)])])

        let open = try await harness.connectTLS(serverName: "site.test")
        #expect(try await open.request(host: "site.test").text == "a")

        // New files, and a broken pair next to them.
        let after = try TestCertificate.write(file: "site", dnsNames: ["site.test"], to: directory)
        try "junk".write(to: directory.appendingPathComponent("broken.pem"), atomically: false, encoding: .utf8)
        try "junk".write(to: directory.appendingPathComponent("broken.key"), atomically: false, encoding: .utf8)
        let answer = try RawHTTPClient(port: adminPort).request("POST", "/_certs/reload", headers: [("Connection", "close")])
        #expect(answer.status == 200)
        let body = try answer.object()
        #expect(body["served"] as? [String] == ["site"])
        #expect((body["names"] as? [String: [String]])?["site"] == ["site.test"])
        #expect((body["failed"] as? [String: String])?.keys.sorted() == ["broken"])

        // The open connection keeps working with the certificate it got.
        #expect(try await open.request(host: "site.test").text == "a")
        #expect(try await open.peerCertificateDER() == before.der)
        // A new one gets the new certificate.
        let fresh = try await harness.connectTLS(serverName: "site.test")
        #expect(try await fresh.peerCertificateDER() == after.der)
        #expect(try await fresh.request(host: "site.test").text == "a")
        await fresh.close()
        await open.close()

        // Nothing usable left: 409, and the previous certificates are still served.
        for file in ["site.pem", "site.key"] {
            try FileManager.default.removeItem(at: directory.appendingPathComponent(file))
        }
        let refused = try RawHTTPClient(port: adminPort).request("POST", "/_certs/reload", headers: [("Connection", "close")])
        #expect(refused.status == 409)
        let still = try await harness.connectTLS(serverName: "site.test")
        #expect(try await still.peerCertificateDER() == after.der)
        await still.close()

        try await admin.close()
        await server.close()
        await harness.shutdown()
    }

    @Test("without an HTTPS listener the reload call says there is nothing to reload")
    func noHTTPS() async throws {
        let harness = try await HTTPHarness.start()
        let admin = try await AdminServer.bind("127.0.0.1:0", driver: harness.driver).get()
        let answer = try RawHTTPClient(port: admin.localAddress!.port!).request(
            "POST", "/_certs/reload", headers: [("Connection", "close")])
        #expect(answer.status == 404)
        try await admin.close()
        await harness.shutdown()
    }
}
