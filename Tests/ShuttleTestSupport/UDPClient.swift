import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A UDP client that collects the replies it gets.
public final class UDPClient: Sendable {
    public let channel: any Channel
    public let replies: NIOLockedValueBox<[String]>

    public init(group: any EventLoopGroup) async throws {
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

    public func send(_ text: String, to port: Int) async throws {
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: port)
        try await channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: ByteBuffer(string: text)))
    }

    /// Waits until exactly `count` replies have come (true), or gives up.
    public func waitForReplies(_ count: Int) async -> Bool {
        await eventually { replies.withLockedValue { $0.count } == count }
    }

    /// Sends `text` until its echo (`echo:TEXT`) comes back, at most five
    /// times, two seconds apart: a datagram lost when the machine is busy
    /// is sent again, as a UDP client would.
    public func exchange(_ text: String, to port: Int) async throws -> Bool {
        for _ in 0..<5 {
            try await send(text, to: port)
            if await eventually(timeout: .seconds(2), { replies.withLockedValue { $0.contains("echo:" + text) } }) {
                return true
            }
        }
        return false
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
