#if os(Linux)
import Glibc
import NIOCore
import ShuttleModel
import ShuttleRuntime
import ShuttleTestSupport
import Testing

/// A virtual-host listener has a socket on every event loop, in one
/// SO_REUSEPORT group: each loop accepts and serves its own clients. The
/// port stays the daemon's alone: binding one in use is an error, even
/// when its holder allows SO_REUSEPORT, and a socket that joins the group
/// afterwards gets no clients.
@Suite("HTTP listeners: a socket per event loop, the port ours alone")
struct ListeningGroupTests {
    @Test("clients are accepted and served on every event loop")
    func everyLoopServes() async throws {
        let harness = try await HTTPHarness.start(relay: .nio)  // NIO's server channels
        let loops = harness.group.makeIterator().reduce(0) { n, _ in n + 1 }
        #expect(harness.http.channels.count == loops)
        #expect(Set(harness.http.channels.map { ObjectIdentifier($0.eventLoop) }).count == loops)
        let server = try await TestHTTPBackend.start(.named("a"), group: harness.group)
        try await harness.apply([vhostService("p", hosts: ["p.test"], backends: [backend("a", server)])])
        // Each loop keeps its own idle backend connection: as many backend
        // connections as loops that served a client. With clients spread
        // over 2 loops, 40 all on one has a chance of 2^-39.
        for _ in 0..<40 { #expect(try await harness.request(host: "p.test").text == "a") }
        #expect(server.connections == loops)
        await server.close()
        await harness.shutdown()
    }

    @Test("binding a port another socket listens on is an error, SO_REUSEPORT or not", arguments: [false, true])
    func portInUse(holderReusesPort: Bool) async throws {
        let harness = try await HTTPHarness.start(relay: .nio)  // NIO's server channels
        let holder = try RawSocket.listen(reusePort: holderReusesPort)
        defer { close(holder.fd) }
        do {
            let listener = try await harness.frontend.bindHTTP("127.0.0.1:\(holder.port)").get()
            Issue.record("bound a port in use (\(listener.channels.count) sockets)")
            try await listener.close().get()
        } catch {
            #expect("\(error)".contains("Address already in use"), "\(error)")
        }
        await harness.shutdown()
    }

    @Test("a socket that joins the port's group afterwards gets no clients")
    func latecomerGetsNoClients() async throws {
        let harness = try await HTTPHarness.start(relay: .nio)  // NIO's server channels
        #expect(harness.http.channels.count > 1)
        // What HAProxy (SO_REUSEADDR and SO_REUSEPORT) would do, as the same user.
        let latecomer = try RawSocket.listen(port: harness.httpPort, reusePort: true)
        defer { close(latecomer.fd) }
        // Without the group's own choice, a third of these would go to it.
        for i in 0..<40 {
            let client = try RawSocket.connect(port: harness.httpPort)
            defer { close(client) }
            if let stolen = Self.acceptNow(latecomer.fd) {
                close(stolen)
                Issue.record("client \(i) went to the latecomer")
                continue
            }
            try RawSocket.send(client, "GET / HTTP/1.1\r\nHost: nobody.test\r\nConnection: close\r\n\r\n")
            let answer = String(decoding: try RawSocket.read(client), as: UTF8.self)
            #expect(answer.hasPrefix("HTTP/1.1 "), "client \(i): \(answer)")
        }
        #expect(Self.acceptNow(latecomer.fd) == nil)
        await harness.shutdown()
    }

    /// A client waiting on a listening socket, accepted; nil when none waits.
    static func acceptNow(_ listener: Int32) -> Int32? {
        var poller = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, 0) == 1 else { return nil }
        let fd = accept(listener, nil, nil)
        return fd >= 0 ? fd : nil
    }
}
#endif
