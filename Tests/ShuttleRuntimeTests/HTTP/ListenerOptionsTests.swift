#if os(Linux)
import Glibc
import NIOCore
import Testing

@testable import ShuttleRuntime

/// Listening sockets carry TCP_NODELAY, and Linux copies it to every
/// accepted socket, which then needs no system call (nor NIO's
/// per-connection chain of option futures) of its own. Without it, a small
/// answer waits on Nagle's algorithm and the client's delayed ACK.
@Suite("Listeners: options their client sockets inherit")
struct ListenerOptionsTests {
    @Test("each HTTP listening socket has TCP_NODELAY")
    func noDelayOnTheListeningSocket() async throws {
        let harness = try await HTTPHarness.start()
        for channel in harness.http.channels {
            let plain = try await channel.getOption(ChannelOptions.tcpOption(.tcp_nodelay)).get()
            #expect(plain != 0)
        }
        await harness.shutdown()
    }

    @Test("a client accepted from a listening group's socket has TCP_NODELAY", arguments: [1, 2])
    func acceptedClientsInheritNoDelay(sockets: Int) throws {
        let group = try ListeningGroup.bind(SpliceAddress(ip: "127.0.0.1", port: 0)!, sockets: sockets, backlog: 8)
        defer { for fd in group { close(fd) } }
        let port = try #require(SpliceAddress.local(of: group[0])).port
        let client = try RawSocket.connect(port: port)
        defer { close(client) }
        // The group's own choice of socket: wait (up to 10 s) on all of them.
        var pollers = group.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        try #require(poll(&pollers, nfds_t(pollers.count), 10_000) > 0)
        let listener = try #require(pollers.first { $0.revents & Int16(POLLIN) != 0 }).fd
        let accepted = accept(listener, nil, nil)
        try #require(accepted >= 0)
        defer { close(accepted) }
        var value: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        try #require(getsockopt(accepted, Int32(IPPROTO_TCP), TCP_NODELAY, &value, &size) == 0)
        #expect(value != 0)
    }
}
#endif
