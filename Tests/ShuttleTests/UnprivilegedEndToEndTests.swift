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

    @Test("virtual hosts, a TCP service and the admin API all work without root", arguments: ["splice", "nio"])
    func everythingWorksWithoutRoot(tcpRelay: String) async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let backend = try await TestHTTPBackend.start(.named("the backend"), group: Self.group)
        let config = directory.appendingPathComponent("config.json")
        try """
        {"services": [
          {"name": "web", "address": "127.0.0.1:0", "virtual_hosts": ["web.test"],
           "backends": [{"name": "b", "address": "\(backend.address)"}]}
        ]}
        """.write(to: config, atomically: true, encoding: .utf8)
        chmod(config.path, 0o644)

        let daemon = try DaemonProcess.unprivileged(
            ["-config", config.path, "-admin", "127.0.0.1:0", "-http", "127.0.0.1:0", "-tcp-relay", tcpRelay],
            copyingTo: directory)
        let adminPort = try await daemon.adminPort()
        let httpPort = try await daemon.listeningPort("HTTP virtual hosts listening")
        let servicePort = try await daemon.listeningPort("service=web")
        #expect(daemon.userID.map { $0 != 0 } == true, "the daemon runs as uid \(daemon.userID.map(String.init) ?? "?")")

        // The virtual-host listener, and a backend connection from it.
        for _ in 0..<4 {
            let viaHost = try Self.get(port: httpPort, host: "web.test")
            #expect(viaHost.status == 200)
            #expect(viaHost.text == "the backend")
        }
        // The TCP service's listener and its backend connections.
        for _ in 0..<4 {
            #expect(try Self.get(port: servicePort, host: "any.test").text == "the backend")
        }
        // The admin API's connections.
        let stats = try admin(adminPort, "GET", "/_stats")
        #expect(stats.status == 200)

        daemon.terminate()
        #expect(await daemon.waitForExit() == 0, "\(daemon.stderr)")
        await backend.close()
    }

    /// GET / with this Host header, on a connection of its own.
    static func get(port: Int, host: String) throws -> RawHTTPResponse {
        let client = try RawHTTPClient(port: port)
        defer { client.close() }
        try client.send("GET / HTTP/1.1\r\nHost: \(host)\r\n\r\n")
        return try client.readResponse()
    }
}
