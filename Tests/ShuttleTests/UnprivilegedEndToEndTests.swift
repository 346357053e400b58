import Foundation
#if canImport(Glibc)
import Glibc
#endif
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

    @Test(
        "virtual hosts (HTTP and HTTPS), TCP and UDP services and the admin API all work without root",
        arguments: [("splice", "epoll"), ("nio", "nio")])
    func everythingWorksWithoutRoot(tcpRelay: String, udpRelay: String) async throws {
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
        """.write(to: config, atomically: true, encoding: .utf8)
        // Readable by nobody: the directory, the config, the certificates and keys.
        chmod(certs.path, 0o755)
        let files = try FileManager.default.contentsOfDirectory(atPath: certs.path).map { certs.appendingPathComponent($0).path }
        for path in [config.path] + files { chmod(path, 0o644) }

        let daemon = try DaemonProcess.unprivileged(
            [
                "-config", config.path, "-admin", "127.0.0.1:0", "-http", "127.0.0.1:0", "-https", "127.0.0.1:0",
                "-certs", certs.path, "-tcp-relay", tcpRelay, "-udp-relay", udpRelay,
            ],
            copyingTo: directory)
        let adminPort = try await daemon.adminPort()
        let httpPort = try await daemon.listeningPort("HTTP virtual hosts listening")
        let httpsPort = try await daemon.listeningPort("HTTPS virtual hosts listening")
        let tcpPort = try await daemon.listeningPort("service=web")
        let udpPort = try await daemon.listeningPort("service=dns")
        #expect(daemon.userID.map { $0 != 0 } == true, "the daemon runs as uid \(daemon.userID.map(String.init) ?? "?")")

        // The virtual-host listeners, and backend connections from them.
        for _ in 0..<4 {
            let viaHost = try Self.get(port: httpPort, host: "web.test")
            #expect(viaHost.status == 200)
            #expect(viaHost.text == "the backend")
        }
        let secure = try ChildProcess(
            "curl", ["--silent", "--show-error", "--max-time", "20", "-k", "--resolve", "web.test:\(httpsPort):127.0.0.1",
                     "https://web.test:\(httpsPort)/"], keepOutput: true)
        #expect(secure.waitUntilExit() == 0, "\(secure.standardError)")
        #expect(secure.standardOutput == "the backend")
        // The TCP service's listener and its backend connections.
        for _ in 0..<4 {
            #expect(try Self.get(port: tcpPort, host: "any.test").text == "the backend")
        }
        // The UDP service.
        #expect(try Self.exchange("hello", port: udpPort) == "echo:hello")
        // The admin API's connections.
        let stats = try admin(adminPort, "GET", "/_stats")
        #expect(stats.status == 200)

        daemon.terminate()
        #expect(await daemon.waitForExit() == 0, "\(daemon.stderr)")
        await backend.close()
        try await echo.close()
    }

    /// One datagram to 127.0.0.1:`port`, and the answer (waited for up to 10 s).
    static func exchange(_ text: String, port: Int) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw RawHTTPClient.Failure(description: "socket: errno \(errno)") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { target in
                Array(text.utf8).withUnsafeBytes {
                    sendto(fd, $0.baseAddress, $0.count, 0, target, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        guard sent >= 0 else { throw RawHTTPClient.Failure(description: "sendto: errno \(errno)") }
        var buffer = [UInt8](repeating: 0, count: 2048)
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard count >= 0 else { throw RawHTTPClient.Failure(description: "recv: errno \(errno)") }
        return String(decoding: buffer[..<count], as: UTF8.self)
    }

    /// GET / with this Host header, on a connection of its own.
    static func get(port: Int, host: String) throws -> RawHTTPResponse {
        let client = try RawHTTPClient(port: port)
        defer { client.close() }
        try client.send("GET / HTTP/1.1\r\nHost: \(host)\r\n\r\n")
        return try client.readResponse()
    }
}
