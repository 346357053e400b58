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
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
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

    @Test("datagrams up to the largest UDP payload go through whole, both ways", arguments: [1, 2_048, 2_049, 9_000, 65_000])
    func largeDatagrams(size: Int) async throws {
        let proxy = ProxyHarness()
        let echo = try await TestUDPBackend.start(name: "echo", group: proxy.group)
        try await proxy.apply(
            Config(services: [
                ServiceConfig(
                    name: "big", address: "127.0.0.1:0", network: "udp",
                    backends: [backend("echo", port: echo.localAddress!.port!, network: "udp")])
            ]))
        let port = try proxy.port(of: "big")
        let client = try await UDPClient(group: proxy.group)
        // Distinct bytes along the datagram, so that a cut or a shifted slice shows.
        let payload = String((0..<size).map { Character(UnicodeScalar(UInt8(97 + $0 % 26))) })
        // The first datagram waits while the flow's socket is set up; the second goes straight through.
        try await client.send(payload, to: port)
        #expect(await eventually { client.replies.withLockedValue { $0.count } == 1 })
        try await client.send(payload, to: port)
        #expect(await eventually { client.replies.withLockedValue { $0.count } == 2 })
        for reply in client.replies.withLockedValue({ $0 }) {
            #expect(reply.utf8.count == size + "echo:".utf8.count)
            #expect(reply == "echo:" + payload)
        }
        try await client.channel.close()
        try await echo.close()
        await proxy.shutdown()
    }
}
