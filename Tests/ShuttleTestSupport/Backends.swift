#if canImport(Glibc)
import Glibc
#endif
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// In-process TCP backends for tests, bound to 127.0.0.1 on a free port.
public enum TestBackend {
    public enum Behaviour: Sendable {
        /// Echoes what it reads.
        case echo
        /// Writes "NAME\n" on connect, then echoes.
        case name(String)
        /// Collects input; when the client half-closes, answers
        /// "got:INPUT" and closes.
        case answerOnEOF
        /// Writes `total` bytes as fast as the peer takes them, counting
        /// what was written into `written`.
        case flood(total: Int, written: NIOLockedValueBox<Int>)
    }

    public static func start(_ behaviour: Behaviour, group: any EventLoopGroup, port: Int = 0) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    switch behaviour {
                    case .echo: try channel.pipeline.syncOperations.addHandler(EchoHandler(greeting: nil))
                    case .name(let name): try channel.pipeline.syncOperations.addHandler(EchoHandler(greeting: name + "\n"))
                    case .answerOnEOF: try channel.pipeline.syncOperations.addHandler(AnswerOnEOFHandler())
                    case .flood(let total, let written):
                        try channel.pipeline.syncOperations.addHandler(FloodHandler(total: total, written: written))
                    }
                }
            }
            .bind(host: "127.0.0.1", port: port).get()
    }

    /// A port on 127.0.0.1 that refuses connections: a socket bound to it
    /// and never listening holds it for the rest of the run. (A port bound
    /// and closed again could be taken by another test's listener running
    /// in parallel, and then it answers.)
    public static func refusingPort(group: any EventLoopGroup) async throws -> Int {
        try refuse(port: 0)
    }

    /// Makes `port` (0: any free one) refuse connections the same way, until
    /// `release(refusingPort:)`: a test that closes a backend its proxy
    /// still dials (a health check every 50 ms) holds the port meanwhile,
    /// or a listener of another test could take it and count those dials.
    @discardableResult
    public static func refuse(port: Int) throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else {
            let failure = errno
            close(fd)
            throw IOError(errnoCode: failure, reason: "bind")
        }
        let port = Int(UInt16(bigEndian: address.sin_port))
        reserved.withLockedValue { $0[port] = fd }
        return port
    }

    /// The sockets holding refusing ports, by port.
    private static let reserved = NIOLockedValueBox<[Int: Int32]>([:])

    /// Frees a refusing port, for a test that starts a listener on it.
    public static func release(refusingPort port: Int) {
        if let fd = reserved.withLockedValue({ $0.removeValue(forKey: port) }) { close(fd) }
    }
}

final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let greeting: String?
    init(greeting: String?) { self.greeting = greeting }

    func channelActive(context: ChannelHandlerContext) {
        if let greeting {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: greeting)), promise: nil)
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(data, promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event { context.close(promise: nil) }
    }
}

final class AnswerOnEOFHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    var input = ""

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        input += String(buffer: unwrapInboundIn(data))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "got:" + input))).whenComplete { _ in
                context.close(promise: nil)
            }
        }
    }
}

final class FloodHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let total: Int
    let written: NIOLockedValueBox<Int>
    var queued = 0
    static let chunk = ByteBuffer(repeating: UInt8(ascii: "x"), count: 64 * 1024)

    init(total: Int, written: NIOLockedValueBox<Int>) {
        self.total = total
        self.written = written
    }

    func channelActive(context: ChannelHandlerContext) {
        pump(context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        pump(context)
    }

    func pump(_ context: ChannelHandlerContext) {
        let written = self.written
        while context.channel.isWritable && queued < total {
            let size = min(Self.chunk.readableBytes, total - queued)
            queued += size
            context.writeAndFlush(wrapOutboundOut(Self.chunk.getSlice(at: 0, length: size)!)).whenSuccess {
                written.withLockedValue { $0 += size }
            }
        }
    }
}

/// UDP backend answering each datagram with "NAME:PAYLOAD".
public enum TestUDPBackend {
    public static func start(name: String, group: any EventLoopGroup) async throws -> any Channel {
        try await DatagramBootstrap(group: group)
            // Room for the largest datagram (SwiftNIO's default cuts at 2,048 bytes).
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NamedUDPEcho(name: name))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }
}

final class NamedUDPEcho: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>
    let name: String
    init(name: String) { self.name = name }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let reply = ByteBuffer(string: "\(name):\(String(buffer: envelope.data))")
        context.writeAndFlush(wrapOutboundOut(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: reply)), promise: nil)
    }
}
