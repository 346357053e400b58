import Foundation
import NIOPosix
import ShuttleTestSupport
import Testing

/// A production daemon runs as a user of its own, not as root. A socket
/// option only root may set (SO_DEBUG: NIO's `socketOption(.tcp_nodelay)`
/// is SOL_SOCKET with TCP_NODELAY's number) once kept `-http` from starting
/// and would have failed every backend connection, with all tests passing
/// as root.
@Suite("The shuttle binary run as an unprivileged user")
struct UnprivilegedEndToEndTests {
    static let group = MultiThreadedEventLoopGroup.singleton

    /// Whether this machine has the OpenSSL 3 the relay's HTTPS loads.
    static let systemHasLibSSL: Bool = {
        guard let library = dlopen("libssl.so.3", RTLD_NOW | RTLD_LOCAL) else { return false }
        dlclose(library)
        return true
    }()

    @Test(
        "virtual hosts (HTTP and HTTPS), TCP and UDP services and the admin API all work without root",
        arguments: [("splice", "epoll", "epoll"), ("nio", "nio", "nio")])
    func everythingWorksWithoutRoot(tcpRelay: String, udpRelay: String, httpRelay: String) async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let certs = directory.appendingPathComponent("certs")
        try FileManager.default.createDirectory(at: certs, withIntermediateDirectories: true)
        try TestCertificate.write(file: "web", dnsNames: ["web.test"], to: certs)
        let backend = try await TestHTTPBackend.start(.named("the backend"), group: Self.group)
        let echo = try await TestUDPBackend.start(name: "echo", group: Self.group)
        let config = directory.appendingPathComponent("config.json")
        try """
        {"services": [
          {"name": "web", "address": "127.0.0.1:0", "virtual_hosts": ["web.test"],
           "backends": [{"name": "b", "address": "\(backend.address)"}]},
          {"name": "dns", "address": "127.0.0.1:0", "network": "udp",
           "backends": [{"name": "e", "address": "127.0.0.1:\(echo.localAddress!.port!)", "network": "udp"}]}
        ]}
        """.write(to: config, atomically: false, encoding: .utf8)
        // Readable by nobody: the directory, the config, the certificates and keys.
        chmod(certs.path, 0o755)
        let files = try FileManager.default.contentsOfDirectory(atPath: certs.path).map { certs.appendingPathComponent($0).path }
        for path in [config.path] + files { chmod(path, 0o644) }

        let daemon = try DaemonProcess.unprivileged(
            [
                "-config", config.path, "-admin", "127.0.0.1:0", "-http", "127.0.0.1:0", "-https", "127.0.0.1:0",
                "-certs", certs.path, "-tcp-relay", tcpRelay, "-udp-relay", udpRelay, "-http-relay", httpRelay,
            ],
            copyingTo: directory)
        let adminPort = try await daemon.adminPort()
        let httpPort = try await daemon.listeningPort("HTTP virtual hosts listening")
        let httpsPort = try await daemon.listeningPort("HTTPS virtual hosts listening")
        // TLS on the relay is the system's OpenSSL (.ci/run installs it);
        // where there is none, the daemon says it serves HTTPS on NIO.
        let tls = httpRelay == "epoll" && Self.systemHasLibSSL ? "tls=OpenSSL 3" : "tls=swift-nio-ssl"
        #expect(daemon.stderr.contains(tls), "\(daemon.stderr)")
        let tcpPort = try await daemon.listeningPort("service=web")
        let udpPort = try await daemon.listeningPort("service=dns")
        #expect(daemon.userID.map { $0 != 0 } == true, "the daemon runs as uid \(daemon.userID.map(String.init) ?? "?")")

        // The virtual-host listeners, and backend connections from them.
        for _ in 0..<4 {
            let viaHost = try Self.get(port: httpPort, host: "web.test")
            #expect(viaHost.status == 200)
            #expect(viaHost.text == "the backend")
        }
        let secure = try curl(["-k", "--resolve", "web.test:\(httpsPort):127.0.0.1", "https://web.test:\(httpsPort)/"])
        #expect(secure.status == 0, "\(secure.error)")
        #expect(secure.output == "the backend")
        // The TCP service's listener and its backend connections.
        for _ in 0..<4 {
            #expect(try Self.get(port: tcpPort, host: "any.test").text == "the backend")
        }
        // The UDP service.
        let client = try await UDPClient(group: Self.group)
        try await client.send("hello", to: udpPort)
        #expect(await client.waitForReplies(1))
        #expect(client.replies.withLockedValue { $0 } == ["echo:hello"])
        try await client.channel.close()
        // The admin API's connections.
        let stats = try admin(adminPort, "GET", "/_stats")
        #expect(stats.status == 200)

        daemon.terminate()
        #expect(await daemon.waitForExit() == 0, "\(daemon.stderr)")
        await backend.close()
        try await echo.close()
    }

    /// GET / with this Host header, on a connection of its own.
    static func get(port: Int, host: String) throws -> RawHTTPResponse {
        let client = try RawHTTPClient(port: port)
        defer { client.close() }
        try client.send("GET / HTTP/1.1\r\nHost: \(host)\r\n\r\n")
        return try client.readResponse()
    }
}
