import Foundation
import NIOPosix
import ShuttleTestSupport
import Testing

/// HTTPS on the relay loads the system's OpenSSL at run time; a machine
/// without it still serves HTTPS, on SwiftNIO.
@Suite("The shuttle binary's HTTPS without the system's OpenSSL")
struct RelayTLSFallbackTests {
    @Test("without libssl, -https is served by swift-nio-ssl, and the log says why")
    func fallsBackToNIO() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let certs = directory.appendingPathComponent("certs")
        try FileManager.default.createDirectory(at: certs, withIntermediateDirectories: true)
        try TestCertificate.write(file: "web", dnsNames: ["web.test"], to: certs)
        let backend = try await TestHTTPBackend.start(.named("the backend"), group: MultiThreadedEventLoopGroup.singleton)
        let config = directory.appendingPathComponent("config.json")
        try """
        {"services": [{"name": "web", "address": "127.0.0.1:0", "virtual_hosts": ["web.test"],
                       "backends": [{"name": "b", "address": "\(backend.address)"}]}]}
        """.write(to: config, atomically: false, encoding: .utf8)
        let missing = directory.appendingPathComponent("no-such-libssl.so.3").path
        let daemon = try DaemonProcess.withEnvironment(
            ["SHUTTLE_LIBSSL": missing],
            ["-config", config.path, "-admin", "127.0.0.1:0", "-https", "127.0.0.1:0", "-certs", certs.path])
        let httpsPort = try await daemon.listeningPort("HTTPS virtual hosts listening")
        let log = daemon.stderr
        #expect(log.contains("HTTPS stays on SwiftNIO"), "\(log)")
        #expect(log.contains(missing), "the reason names the library: \(log)")
        #expect(log.contains("tls=swift-nio-ssl"), "\(log)")
        let secure = try curl(["-k", "--resolve", "web.test:\(httpsPort):127.0.0.1", "https://web.test:\(httpsPort)/"])
        #expect(secure.status == 0, "\(secure.error)")
        #expect(secure.output == "the backend")
        daemon.terminate()
        #expect(await daemon.waitForExit() == 0, "\(daemon.stderr)")
        await backend.close()
    }
}
