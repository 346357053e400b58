import NIOCore
import NIOHTTP1
import NIOPosix
import ShuttleModel

/// Receives what a backend connection reads, for the exchange using it.
protocol BackendConnectionDelegate: AnyObject {
    func backend(_ connection: BackendConnection, received part: HTTPClientResponsePart)
    /// The connection failed or closed; `error` is nil for a clean close.
    func backendClosed(_ connection: BackendConnection, error: (any Error)?)
    func backendWritabilityChanged(_ connection: BackendConnection)
    /// A read from the backend ended: time to flush what it brought.
    func backendReadComplete(_ connection: BackendConnection)
}

/// One keep-alive HTTP/1.1 connection to a backend, on the event loop of
/// the clients it serves. Reads only while its delegate can take the data
/// (the client is writable), so a slow client slows the backend. While it
/// waits in the pool it reads on, to notice the backend closing it.
final class BackendConnection: ChannelDuplexHandler, RemovableChannelHandler, @unchecked Sendable {  // confined to its event loop
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    let backend: BackendID
    let address: String
    private(set) var channel: (any Channel)?
    private var context: ChannelHandlerContext?
    weak var delegate: (any BackendConnectionDelegate)?
    /// Whether the delegate can take more (its client is writable).
    var canRead: (() -> Bool)?
    private var pendingRead = false
    /// Requests sent on it so far (more than one: it was reused).
    var requestsSent = 0
    /// Set when the backend said the connection ends after this answer, or
    /// the connection cannot carry another request.
    var closeAfterResponse = false
    /// When it was last put back in its pool.
    var idleSince = NIODeadline.now()
    private(set) var isClosed = false
    /// The HTTP codec handlers, removed when the connection is upgraded.
    var codecHandlers: [any RemovableChannelHandler] = []

    init(backend: BackendID, address: String) {
        self.backend = backend
        self.address = address
    }

    /// Connects to `target` on `loop`.
    static func connect(to target: BackendTarget, on loop: any EventLoop) -> EventLoopFuture<BackendConnection> {
        guard case .success(let address) = HostPort.parse(target.address, listening: false) else {
            return loop.makeFailedFuture(ListenError.badAddress(target.address))
        }
        let connection = BackendConnection(backend: target.id, address: target.address)
        var bootstrap = ClientBootstrap(group: loop)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            // NIO keeps one read buffer per read of an event (up to 64 KiB
            // each, while the answer's earlier parts are still on their way
            // out) and keeps them while the connection waits in the pool:
            // with NIO's four reads that was up to 256 KiB per idle
            // connection, 14 MiB held after a run of 64 KiB answers. One
            // read per event keeps one buffer (two reads per event measured
            // no faster; 16 KiB reads instead cost 14% of the 64 KiB
            // answers' rate).
            .channelOption(.maxMessagesPerRead, value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // 100 Continue and other interim answers are passed on;
                    // after a 101 the bytes that follow are handed on as they are.
                    let decoder = ByteToMessageHandler(
                        HTTPResponseDecoder(leftOverBytesStrategy: .forwardBytes, informationalResponseStrategy: .forward))
                    let encoder = HTTPRequestEncoder()
                    connection.codecHandlers = [encoder, decoder]
                    // The decoder sees the requests go out (answers to HEAD have no body).
                    try channel.pipeline.syncOperations.addHandler(encoder)
                    try channel.pipeline.syncOperations.addHandler(decoder)
                    try channel.pipeline.syncOperations.addHandler(connection)
                }
            }
        if target.connectTimeout > 0 {
            bootstrap = bootstrap.connectTimeout(TimeAmount.milliseconds(Int64(target.connectTimeout)))
        }
        return bootstrap.connect(host: address.hostString, port: address.port).map { _ in connection }
    }

    var isWritable: Bool { channel?.isWritable ?? false }
    var isUsable: Bool { !isClosed && (channel?.isActive ?? false) && !closeAfterResponse }

    func write(_ part: HTTPClientRequestPart) {
        context?.write(wrapOutboundOut(part), promise: nil)
    }

    func flush() { context?.flush() }

    func close() {
        isClosed = true
        channel?.close(promise: nil)
    }

    /// The delegate can take data again.
    func resumeReading() {
        if pendingRead, let context {
            pendingRead = false
            context.read()
        }
    }

    // MARK: ChannelDuplexHandler

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        channel = context.channel
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        guard let delegate else {
            // An answer nobody asked for (while idle in the pool): the
            // connection is out of step and cannot be used again.
            close()
            return
        }
        if case .head(let head) = part, head.status.code >= 200 || head.status == .switchingProtocols {
            if !head.isKeepAlive || head.status == .switchingProtocols { closeAfterResponse = true }
        }
        delegate.backend(self, received: part)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        delegate?.backendReadComplete(self)
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        isClosed = true
        delegate?.backendClosed(self, error: nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        isClosed = true
        let delegate = self.delegate
        self.delegate = nil
        delegate?.backendClosed(self, error: error)
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        delegate?.backendWritabilityChanged(self)
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if canRead?() ?? true {
            context.read()
        } else {
            pendingRead = true
        }
    }
}
