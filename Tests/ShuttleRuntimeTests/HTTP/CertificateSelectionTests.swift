import Foundation
import NIOCore
import NIOSSL
import ShuttleModel
import ShuttleRuntime
import ShuttleTestSupport
import Testing

@Suite("HTTPS: the certificate for a connection is chosen by its SNI name")
struct CertificateSelectionTests {
    /// The certificate a TLS client sees when it sends `serverName`.
    func presented(_ harness: HTTPHarness, serverName: String?) async throws -> [UInt8]? {
        let connection = try await harness.connectTLS(serverName: serverName)
        defer { Task { await connection.close() } }
        return try await connection.peerCertificateDER()
    }

    @Test("exact names beat wildcards; the common name counts when there are no alternative names")
    func byNames() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let exact = try TestCertificate.write(file: "a-exact", dnsNames: ["www.example.test", "example.test"], to: directory)
        let wildcard = try TestCertificate.write(file: "b-wildcard", dnsNames: ["*.example.test"], to: directory)
        let common = try TestCertificate.write(file: "c-common", commonName: "legacy.test", dnsNames: [], to: directory)
        let harness = try await HTTPHarness.start(certificates: directory)
        #expect(try await presented(harness, serverName: "www.example.test") == exact.der)
        #expect(try await presented(harness, serverName: "EXAMPLE.test") == exact.der)
        #expect(try await presented(harness, serverName: "api.example.test") == wildcard.der)
        #expect(try await presented(harness, serverName: "legacy.test") == common.der)
        await harness.shutdown()
    }

    @Test("the file name counts when no certificate names the server, as in the original")
    func byFileName() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try TestCertificate.write(file: "a-first", dnsNames: ["first.test"], to: directory)
        let byFile = try TestCertificate.write(file: "files.test", dnsNames: ["other.test"], to: directory)
        let harness = try await HTTPHarness.start(certificates: directory)
        #expect(try await presented(harness, serverName: "files.test") == byFile.der)
        await harness.shutdown()
    }

    @Test("unknown names and no SNI get default.pem if present")
    func defaultCertificate() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try TestCertificate.write(file: "a-first", dnsNames: ["first.test"], to: directory)
        let fallback = try TestCertificate.write(file: "default", dnsNames: ["fallback.test"], to: directory)
        let harness = try await HTTPHarness.start(certificates: directory)
        #expect(try await presented(harness, serverName: "unknown.test") == fallback.der)
        #expect(try await presented(harness, serverName: nil) == fallback.der)
        await harness.shutdown()
    }

    @Test("without default.pem the first pair by name is the default")
    func firstByName() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try TestCertificate.write(file: "zz", dnsNames: ["zz.test"], to: directory)
        let first = try TestCertificate.write(file: "aa", dnsNames: ["aa.test"], to: directory)
        let harness = try await HTTPHarness.start(certificates: directory)
        #expect(try await presented(harness, serverName: "unknown.test") == first.der)
        await harness.shutdown()
    }

    @Test("a pem holding a chain is served whole")
    func chain() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let leaf = try TestCertificate.make(file: "chain", commonName: "chain.test", dnsNames: ["chain.test"])
        let other = try TestCertificate.make(file: "unused", commonName: "intermediate", dnsNames: [])
        var combined = leaf
        combined.pem = leaf.pem + "\n" + other.pem
        try combined.write(to: directory)
        let harness = try await HTTPHarness.start(certificates: directory)
        #expect(try await presented(harness, serverName: "chain.test") == leaf.der)
        await harness.shutdown()
    }

    @Test("a pair that does not load is skipped; no usable pair at all is an error that says why")
    func badPairs() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let good = try TestCertificate.write(file: "good", dnsNames: ["good.test"], to: directory)
        try "not a certificate".write(to: directory.appendingPathComponent("broken.pem"), atomically: false, encoding: .utf8)
        try "not a key".write(to: directory.appendingPathComponent("broken.key"), atomically: false, encoding: .utf8)
        let store = CertificateStore(directory: directory.path, logger: testLogger())
        let report = try store.reload()
        #expect(report.served == ["good"])
        #expect(report.failed.keys.sorted() == ["broken"])
        let harness = try await HTTPHarness.start(certificates: directory)
        #expect(try await presented(harness, serverName: "good.test") == good.der)
        await harness.shutdown()

        let empty = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: empty) }
        try "junk".write(to: empty.appendingPathComponent("only.pem"), atomically: false, encoding: .utf8)
        try "junk".write(to: empty.appendingPathComponent("only.key"), atomically: false, encoding: .utf8)
        let nothing = CertificateStore(directory: empty.path, logger: testLogger())
        let error = #expect(throws: CertificateStore.LoadError.self) { try nothing.reload() }
        #expect(error.map { "\($0)" }?.contains("no usable certificate") == true)
        #expect(error.map { "\($0)" }?.contains("only") == true)
    }

    @Test("ALPN offers http/1.1; TLS below 1.2 is refused")
    func protocols() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try TestCertificate.write(file: "p", dnsNames: ["p.test"], to: directory)
        let harness = try await HTTPHarness.start(certificates: directory)
        let connection = try await harness.connectTLS(serverName: "p.test", applicationProtocols: ["h2", "http/1.1"])
        #expect(connection.negotiatedProtocol == "http/1.1")
        await connection.close()
        for version in [TLSVersion.tlsv12, .tlsv13] {
            let ok = try await HTTPTestConnection.connect(
                port: harness.httpsPort, group: harness.group,
                tls: .init(serverName: "p.test", minimumVersion: version, maximumVersion: version))
            await ok.close()
        }
        await #expect(throws: (any Error).self) {
            let old = try await HTTPTestConnection.connect(
                port: harness.httpsPort, group: harness.group,
                tls: .init(serverName: "p.test", minimumVersion: .tlsv1, maximumVersion: .tlsv11))
            await old.close()
        }
        await harness.shutdown()
    }

    @Test("requests over TLS are routed by their Host header")
    func routing() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try TestCertificate.write(file: "site", dnsNames: ["*.site.test"], to: directory)
        let harness = try await HTTPHarness.start(certificates: directory)
        let a = try await TestHTTPBackend.start(.named("a"), group: harness.group)
        let b = try await TestHTTPBackend.start(.named("b"), group: harness.group)
        try await harness.apply([
            vhostService("a", hosts: ["a.site.test"], backends: [backend("a", a)]),
            vhostService("b", hosts: ["b.site.test"], backends: [backend("b", b)]),
        ])
        let connection = try await harness.connectTLS(serverName: "a.site.test")
        #expect(try await connection.request(host: "a.site.test").text == "a")
        #expect(try await connection.request(host: "b.site.test").text == "b")
        #expect(try await connection.request(host: "nobody.test").status == 404)
        await connection.close()
        await a.close()
        await b.close()
        await harness.shutdown()
    }
}
