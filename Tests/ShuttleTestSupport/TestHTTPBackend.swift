import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// An HTTP backend for tests on a free port of 127.0.0.1. It counts the
/// connections it accepted and records every request head it read.
public final class TestHTTPBackend: Sendable {
    public enum Behaviour: Sendable {
        /// 200 with the body NAME (`Content-Length`) and `X-Served-By: NAME`,
        /// plus hop-by-hop headers that a proxy must drop.
        case named(String)
        /// This status with this body.
        case status(Int, body: String)
        /// Answers this status as soon as a request's head arrives, without
        /// waiting for its body.
        case answerAtHead(Int, body: String)
        /// Declares a body of `declared` bytes, sends `sent`, and closes.
        case truncated(declared: Int, sent: String)
        /// Counts the request body and answers `received N`.
        case sink
        /// Answers the request body back, chunked, in several parts, with a
        /// trailer `X-Body-Length`.
        case echo
        /// Answers 200 with `Content-Length: total` and sends it as fast as
        /// the peer takes it, counting what was written.
        case flood(total: Int, written: NIOLockedValueBox<Int>)
        /// Reads requests and never answers.
        case silent
        /// Answers with bytes that are not HTTP.
        case garbage
        /// Closes the connection as soon as a request arrives.
        case reset
        /// Answers like `named`, then closes the connection without saying so.
        case closeAfterResponse(String)
        /// Answers the first request of a connection like `named`; closes
        /// the connection, unanswered, when a second one arrives (as a
        /// backend whose idle timeout just fired does).
        case oneRequestPerConnection(String)
        /// Answers `Expect: 100-continue` with 100 Continue, then answers
        /// the body's length.
        case expectContinue
        /// Switches to WebSocket (101) and echoes each text frame.
        case webSocketEcho
        /// Accepts and never reads.
        case stall
        /// Answers `GET /bytes/N` with N bytes of `patternByte(at:)`
        /// (`Content-Length`), written in pieces of 10,000.
        case patterned
        /// `patterned`, with these bytes sent after each answer's body (more
        /// than its `Content-Length` says).
        case patternedWithExtra(String)
        /// Counts the request body and checks it against `patternByte(at:)`:
        /// answers `received N ok`, or `received N bad at OFFSET`.
        case patternSink
    }

    /// The byte at `offset` of a `patterned` answer: it repeats every 251
    /// bytes, so a piece lost, doubled or moved shows.
    public static func patternByte(at offset: Int) -> UInt8 { UInt8(offset % 251) }

    public let channel: any Channel
    /// The port it listens on (kept: a closed channel has no address).
    public let port: Int
    let connectionCount: NIOLockedValueBox<Int>
    let openCount: NIOLockedValueBox<Int>
    let heads: NIOLockedValueBox<[HTTPRequestHead]>

    private init(
        channel: any Channel, connections: NIOLockedValueBox<Int>, open: NIOLockedValueBox<Int>,
        heads: NIOLockedValueBox<[HTTPRequestHead]>
    ) {
        self.channel = channel
        self.port = channel.localAddress!.port!
        self.connectionCount = connections
        self.openCount = open
        self.heads = heads
    }

    /// `127.0.0.1:PORT`.
    public var address: String { "127.0.0.1:\(port)" }
    /// Connections accepted so far.
    public var connections: Int { connectionCount.withLockedValue { $0 } }
    /// Connections open now.
    public var openConnections: Int { openCount.withLockedValue { $0 } }
    /// Request heads read so far.
    public var requests: [HTTPRequestHead] { heads.withLockedValue { $0 } }

    public static func start(_ behaviour: Behaviour, group: any EventLoopGroup, port: Int = 0) async throws -> TestHTTPBackend {
        let connections = NIOLockedValueBox(0)
        let open = NIOLockedValueBox(0)
        let heads = NIOLockedValueBox<[HTTPRequestHead]>([])
        var bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        if case .stall = behaviour {
            bootstrap = bootstrap.childChannelOption(.autoRead, value: false)
        }
        let channel = try await bootstrap
            .childChannelInitializer { channel in
                connections.withLockedValue { $0 += 1 }
                open.withLockedValue { $0 += 1 }
                channel.closeFuture.whenComplete { _ in open.withLockedValue { $0 -= 1 } }
                return channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    switch behaviour {
                    case .stall:
                        break
                    case .garbage, .reset, .webSocketEcho:
                        try sync.addHandler(RawBackendHandler(behaviour: behaviour, heads: heads))
                    default:
                        try sync.configureHTTPServerPipeline(withPipeliningAssistance: true, withErrorHandling: true)
                        try sync.addHandler(HTTPBackendHandler(behaviour: behaviour, heads: heads))
                    }
                }
            }
            .bind(host: "127.0.0.1", port: port).get()
        return TestHTTPBackend(channel: channel, connections: connections, open: open, heads: heads)
    }

    public func close() async {
        try? await channel.close()
    }
}

final class HTTPBackendHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let behaviour: TestHTTPBackend.Behaviour
    let heads: NIOLockedValueBox<[HTTPRequestHead]>
    var head: HTTPRequestHead?
    var body = ByteBuffer()
    var bodyLength = 0
    /// Where a `patternSink` body first differed from the pattern.
    var firstBad: Int?
    var requestsOnConnection = 0
    var flooded = 0
    var flooding: (total: Int, written: NIOLockedValueBox<Int>)?
    var pumping = false

    init(behaviour: TestHTTPBackend.Behaviour, heads: NIOLockedValueBox<[HTTPRequestHead]>) {
        self.behaviour = behaviour
        self.heads = heads
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            heads.withLockedValue { $0.append(head) }
            requestsOnConnection += 1
            self.head = head
            body.clear()
            bodyLength = 0
            firstBad = nil
            if case .oneRequestPerConnection = behaviour, requestsOnConnection > 1 {
                context.close(promise: nil)
                return
            }
            if case .answerAtHead = behaviour {
                answer(head, context: context)
                return
            }
            if case .expectContinue = behaviour, head.headers["expect"].first?.lowercased() == "100-continue" {
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .continue))), promise: nil)
            }
        case .body(var part):
            if case .patternSink = behaviour {
                for (index, byte) in part.readableBytesView.enumerated()
                where firstBad == nil && byte != TestHTTPBackend.patternByte(at: bodyLength + index) {
                    firstBad = bodyLength + index
                }
            }
            bodyLength += part.readableBytes
            if case .sink = behaviour { return }
            if case .patternSink = behaviour { return }
            body.writeBuffer(&part)
        case .end:
            guard let head else { return }
            if case .answerAtHead = behaviour { return }
            answer(head, context: context)
        }
    }

    func answer(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        switch behaviour {
        case .named(let name), .closeAfterResponse(let name), .oneRequestPerConnection(let name):
            var headers = HTTPHeaders()
            headers.add(name: "X-Served-By", value: name)
            headers.add(name: "Content-Length", value: String(name.utf8.count))
            headers.add(name: "Keep-Alive", value: "timeout=30")
            headers.add(name: "Connection", value: "X-Hop-Private")
            headers.add(name: "X-Hop-Private", value: "must not pass")
            headers.add(name: "Proxy-Authenticate", value: "Basic")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            if head.method != .HEAD { context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: name)))), promise: nil) }
            let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
            if case .closeAfterResponse = behaviour {
                let channel = context.channel
                done.whenComplete { _ in channel.close(promise: nil) }
            }
        case .answerAtHead(let code, let text), .status(let code, let text):
            let headers = HTTPHeaders([("Content-Length", String(text.utf8.count)), ("Content-Type", "text/plain")])
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .init(statusCode: code), headers: headers))),
                promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        case .sink, .expectContinue:
            let text = "received \(bodyLength)"
            let headers = HTTPHeaders([("Content-Length", String(text.utf8.count))])
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        case .echo:
            // No length: the encoder sends it chunked.
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok))), promise: nil)
            var rest = body
            while rest.readableBytes > 0, let part = rest.readSlice(length: min(7, rest.readableBytes)) {
                context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(part))), promise: nil)
            }
            let trailers = HTTPHeaders([("X-Body-Length", String(bodyLength))])
            context.writeAndFlush(wrapOutboundOut(.end(trailers)), promise: nil)
        case .flood(let total, let written):
            flooding = (total, written)
            flooded = 0
            let headers = HTTPHeaders([("Content-Length", String(total))])
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            pump(context)
        case .truncated(let declared, let sent):
            let headers = HTTPHeaders([("Content-Length", String(declared))])
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: sent))))).whenComplete { _ in
                channel.close(promise: nil)
            }
        case .patternSink:
            let text = "received \(bodyLength) " + (firstBad.map { "bad at \($0)" } ?? "ok")
            let headers = HTTPHeaders([("Content-Length", String(text.utf8.count))])
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        case .patterned, .patternedWithExtra:
            let size = head.uri.hasPrefix("/bytes/") ? Int(head.uri.dropFirst(7)) ?? 0 : 0
            let headers = HTTPHeaders([("Content-Length", String(size))])
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            var offset = 0
            while offset < size {
                let piece = min(10_000, size - offset)
                let start = offset % 251
                let buffer = ByteBuffer(bytes: Self.patternPieces[start..<(start + piece)])
                context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
                offset += piece
            }
            if case .patternedWithExtra(let extra) = behaviour {
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: extra)))), promise: nil)
            }
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        case .silent:
            break
        case .garbage, .reset, .webSocketEcho, .stall:
            break  // raw behaviours, not handled here
        }
    }

    static let chunk = ByteBuffer(repeating: UInt8(ascii: "x"), count: 64 * 1024)
    /// Any piece of a `patterned` answer, up to 10,000 bytes, from its offset modulo 251.
    static let patternPieces = (0..<(10_000 + 251)).map(TestHTTPBackend.patternByte(at:))

    func pump(_ context: ChannelHandlerContext) {
        // A write can report a writability change at once: no re-entry.
        guard let (total, written) = flooding, !pumping else { return }
        pumping = true
        defer { pumping = false }
        while context.channel.isWritable && flooded < total {
            let size = min(Self.chunk.readableBytes, total - flooded)
            flooded += size
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(Self.chunk.getSlice(at: 0, length: size)!)))).whenSuccess {
                written.withLockedValue { $0 += size }
            }
        }
        if flooded >= total {
            flooding = nil
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        pump(context)
        context.fireChannelWritabilityChanged()
    }
}

/// Behaviours below HTTP: garbage, a reset, a WebSocket echo.
final class RawBackendHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let behaviour: TestHTTPBackend.Behaviour
    let heads: NIOLockedValueBox<[HTTPRequestHead]>
    var buffer: [UInt8] = []
    var upgraded = false

    init(behaviour: TestHTTPBackend.Behaviour, heads: NIOLockedValueBox<[HTTPRequestHead]>) {
        self.behaviour = behaviour
        self.heads = heads
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        buffer += unwrapInboundIn(data).readableBytesView
        switch behaviour {
        case .reset:
            context.close(promise: nil)
        case .garbage:
            guard HTTPResponseParser.find([13, 10, 13, 10], in: buffer, from: 0) != nil else { return }
            buffer.removeAll()
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "this is \u{1} not http\r\n\r\n")), promise: nil)
        case .webSocketEcho:
            webSocket(context)
        default:
            break
        }
    }

    func webSocket(_ context: ChannelHandlerContext) {
        if !upgraded {
            guard let end = HTTPResponseParser.find([13, 10, 13, 10], in: buffer, from: 0) else { return }
            let headText = String(decoding: buffer[..<end], as: UTF8.self)
            buffer.removeFirst(end + 4)
            let lines = headText.components(separatedBy: "\r\n")
            var headers = HTTPHeaders()
            for line in lines.dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers.add(name: String(line[..<colon]), value: line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
            }
            let parts = lines[0].split(separator: " ")
            heads.withLockedValue {
                $0.append(HTTPRequestHead(version: .http1_1, method: .GET, uri: parts.count > 1 ? String(parts[1]) : "/", headers: headers))
            }
            let key = headers["sec-websocket-key"].first ?? ""
            let answer =
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Accept: \(WebSocketFrames.acceptValue(for: key))\r\n\r\n"
            upgraded = true
            // A first frame right behind the 101, in the same write.
            var out = ByteBuffer(string: answer)
            out.writeBytes(WebSocketFrames.text("hello from the backend", masked: false))
            context.writeAndFlush(wrapOutboundOut(out), promise: nil)
        }
        while let (payload, length) = WebSocketFrames.parse(buffer) {
            buffer.removeFirst(length)
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: WebSocketFrames.text("echo: " + payload, masked: false))), promise: nil)
        }
    }
}
