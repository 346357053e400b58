import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ShuttleModel
import ShuttleRuntime
import ShuttleTestSupport
import Testing

/// A UDP client that collects the replies it gets.
final class UDPClient: Sendable {
    let channel: any Channel
    let replies: NIOLockedValueBox<[String]>

    init(group: any EventLoopGroup) async throws {
        let replies = NIOLockedValueBox<[String]>([])
        self.replies = replies
        channel = try await DatagramBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ReplyCollector(replies: replies))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    func send(_ text: String, to port: Int) async throws {
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: port)
        try await channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: ByteBuffer(string: text)))
    }

    final class ReplyCollector: ChannelInboundHandler {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let replies: NIOLockedValueBox<[String]>
        init(replies: NIOLockedValueBox<[String]>) { self.replies = replies }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let text = String(buffer: unwrapInboundIn(data).data)
            replies.withLockedValue { $0.append(text) }
        }
    }
}

@Suite("UDP proxying over real sockets")
struct UDPProxyTests {
    @Test("a datagram's reply comes back to its client; two clients keep their own flows")
    func requestReplyWithFlows() async throws {
        let proxy = ProxyHarness()
        let one = try await TestUDPBackend.start(name: "one", group: proxy.group)
        let two = try await TestUDPBackend.start(name: "two", group: proxy.group)
        try await proxy.apply(
            Config(services: [
                ServiceConfig(
                    name: "dns", address: "127.0.0.1:0", network: "udp",
                    backends: [
                        backend("one", port: one.localAddress!.port!, network: "udp"),
                        backend("two", port: two.localAddress!.port!, network: "udp"),
                    ])
            ]))
        let port = try proxy.port(of: "dns")
        let first = try await UDPClient(group: proxy.group)
        let second = try await UDPClient(group: proxy.group)
        try await first.send("ping1", to: port)
        #expect(await eventually { first.replies.withLockedValue { $0.count } == 1 })
        try await second.send("ping2", to: port)
        #expect(await eventually { second.replies.withLockedValue { $0.count } == 1 })
        let firstBackend = try #require(first.replies.withLockedValue { $0.first }?.split(separator: ":").first)
        let secondBackend = try #require(second.replies.withLockedValue { $0.first }?.split(separator: ":").first)
        #expect(firstBackend != secondBackend, "round robin puts the second flow on the other backend")
        // Each flow sticks to its backend.
        for i in 0..<3 {
            try await first.send("again\(i)", to: port)
            try await second.send("again\(i)", to: port)
        }
        #expect(await eventually { first.replies.withLockedValue { $0.count } == 4 && second.replies.withLockedValue { $0.count } == 4 })
        #expect(first.replies.withLockedValue { $0 }.allSatisfy { $0.hasPrefix(firstBackend + ":") })
        #expect(second.replies.withLockedValue { $0 }.allSatisfy { $0.hasPrefix(secondBackend + ":") })
        #expect(first.replies.withLockedValue { $0 }.first == "\(firstBackend):ping1")
        #expect(proxy.stats("dns")?.connections == 2)
        try await first.channel.close()
        try await second.channel.close()
        try await one.close()
        try await two.close()
        await proxy.shutdown()
    }
}
