#if os(Linux)
import NIOCore
import Testing

/// The virtual-host listener sets TCP_NODELAY on its own socket: Linux
/// copies it to every accepted socket, which then needs no system call (nor
/// NIO's per-connection chain of option futures) of its own. Without it,
/// a small answer waits on Nagle's algorithm and the client's delayed ACK.
@Suite("HTTP listeners: options their client sockets inherit")
struct ListenerOptionsTests {
    @Test("each listening socket has TCP_NODELAY (HTTP and HTTPS bind alike)")
    func noDelayOnTheListeningSocket() async throws {
        let harness = try await HTTPHarness.start()
        for channel in harness.http.channels {
            let plain = try await channel.getOption(ChannelOptions.tcpOption(.tcp_nodelay)).get()
            #expect(plain != 0)
        }
        await harness.shutdown()
    }
}
#endif
