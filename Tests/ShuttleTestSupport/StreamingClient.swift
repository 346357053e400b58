import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A client for large bodies: it counts what it receives instead of
/// keeping it (only the first 64 KiB are kept, for the head), and it can
/// send a body of any size as fast as the connection takes it, counting
/// what was written.
public final class StreamingClient: Sendable {
    struct State {
        var received = 0
        var prefix: [UInt8] = []
        var written = 0
        var closed = false
    }

    public let channel: any Channel
    let state: NIOLockedValueBox<State>
    let handler: NIOLoopBound<StreamingHandler>

    private init(channel: any Channel, state: NIOLockedValueBox<State>, handler: NIOLoopBound<StreamingHandler>) {
        self.channel = channel
        self.state = state
        self.handler = handler
    }

    /// Connects to `127.0.0.1:port`; with `autoRead` off it reads nothing.
    public static func connect(port: Int, group: any EventLoopGroup, autoRead: Bool = true) async throws -> StreamingClient {
        let state = NIOLockedValueBox(State())
        let loop = group.next()
        let handler = try await loop.submit { NIOLoopBound(StreamingHandler(state: state), eventLoop: loop) }.get()
        let channel = try await ClientBootstrap(group: loop)
            .channelOption(.autoRead, value: autoRead)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(handler.value)
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return StreamingClient(channel: channel, state: state, handler: handler)
    }

    /// Sends `head` (request text) and then `total` body bytes, as fast as
    /// the connection takes them.
    public func upload(head: String, total: Int) async throws {
        try await channel.writeAndFlush(ByteBuffer(string: head))
        let handler = self.handler
        try await channel.eventLoop.submit {
            handler.value.startUpload(total: total)
        }.get()
    }

    public func send(_ text: String) async throws {
        try await channel.writeAndFlush(ByteBuffer(string: text))
    }

    /// Body bytes written so far (their writes completed).
    public var written: Int { state.withLockedValue { $0.written } }
    /// Bytes received so far.
    public var received: Int { state.withLockedValue { $0.received } }
    /// The first bytes received, as text.
    public var prefix: String { String(decoding: state.withLockedValue { $0.prefix }, as: UTF8.self) }
    public var isClosed: Bool { state.withLockedValue { $0.closed } }

    /// The length of the answer's head, once it is there.
    public var headLength: Int? {
        let prefix = state.withLockedValue { $0.prefix }
        return HTTPResponseParser.find([13, 10, 13, 10], in: prefix, from: 0).map { $0 + 4 }
    }

    public func close() async {
        try? await channel.close()
    }
}

final class StreamingHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let state: NIOLockedValueBox<StreamingClient.State>
    var context: ChannelHandlerContext?
    var toSend = 0
    var pumping = false
    static let chunk = ByteBuffer(repeating: UInt8(ascii: "u"), count: 64 * 1024)

    init(state: NIOLockedValueBox<StreamingClient.State>) { self.state = state }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func startUpload(total: Int) {
        toSend = total
        pump()
    }

    func pump() {
        guard let context, !pumping else { return }
        pumping = true
        defer { pumping = false }
        let state = self.state
        while context.channel.isWritable && toSend > 0 {
            let size = min(Self.chunk.readableBytes, toSend)
            toSend -= size
            context.writeAndFlush(wrapOutboundOut(Self.chunk.getSlice(at: 0, length: size)!)).whenSuccess {
                state.withLockedValue { $0.written += size }
            }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        state.withLockedValue { state in
            state.received += buffer.readableBytes
            if state.prefix.count < 64 * 1024 { state.prefix += buffer.readableBytesView.prefix(64 * 1024 - state.prefix.count) }
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        pump()
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        state.withLockedValue { $0.closed = true }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Polls until `value` stops growing for `quiet` (or `limit` passes) and
/// returns where it stalled.
public func stalledValue(quiet: Duration = .milliseconds(500), limit: Duration = .seconds(60), _ value: () -> Int) async -> Int {
    let deadline = ContinuousClock.now + limit
    var last = -1
    while ContinuousClock.now < deadline {
        let now = value()
        if now == last { return now }
        last = now
        try? await Task.sleep(for: quiet)
    }
    return value()
}
