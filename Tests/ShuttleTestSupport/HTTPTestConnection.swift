import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// One client connection for HTTP tests, plain or over TLS: it sends
/// exactly the bytes it is given (pipelined requests, garbage, a WebSocket
/// frame) and parses the answers it collects. Over TLS it tells the
/// certificate the server presented and the protocol ALPN chose.
public final class HTTPTestConnection: Sendable {
    /// How to speak TLS to the server.
    public struct TLS: Sendable {
        /// The SNI name sent; nil sends none.
        public var serverName: String?
        /// ALPN protocols offered.
        public var applicationProtocols: [String]
        public var minimumVersion: TLSVersion?
        public var maximumVersion: TLSVersion?

        public init(
            serverName: String?, applicationProtocols: [String] = [], minimumVersion: TLSVersion? = nil,
            maximumVersion: TLSVersion? = nil
        ) {
            self.serverName = serverName
            self.applicationProtocols = applicationProtocols
            self.minimumVersion = minimumVersion
            self.maximumVersion = maximumVersion
        }
    }

    struct State {
        var bytes: [UInt8] = []
        var closed = false
        var handshake: Result<String?, any Error>?
    }

    public let channel: any Channel
    let state: NIOLockedValueBox<State>

    private init(channel: any Channel, state: NIOLockedValueBox<State>) {
        self.channel = channel
        self.state = state
    }

    /// Connects to `127.0.0.1:port`; over TLS, waits for the handshake and
    /// throws if it fails.
    public static func connect(
        port: Int, group: any EventLoopGroup, tls: TLS? = nil, autoRead: Bool = true
    ) async throws -> HTTPTestConnection {
        let state = NIOLockedValueBox(State())
        var sslContext: NIOSSLContext?
        if let tls {
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            configuration.applicationProtocols = tls.applicationProtocols
            if let minimum = tls.minimumVersion { configuration.minimumTLSVersion = minimum }
            configuration.maximumTLSVersion = tls.maximumVersion
            sslContext = try NIOSSLContext(configuration: configuration)
        } else {
            state.withLockedValue { $0.handshake = .success(nil) }
        }
        let context = sslContext
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.autoRead, value: autoRead)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let context {
                        let handler = try NIOSSLClientHandler(context: context, serverHostname: tls?.serverName)
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                    try channel.pipeline.syncOperations.addHandler(ResponseBytesCollector(state: state))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        let connection = HTTPTestConnection(channel: channel, state: state)
        if tls != nil {
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline {
                switch state.withLockedValue({ $0.handshake }) {
                case .success: return connection
                case .failure(let error):
                    await connection.close()
                    throw error
                case nil:
                    if state.withLockedValue({ $0.closed }) {
                        throw HTTPTestFailure("the server closed the connection during the TLS handshake")
                    }
                    try await Task.sleep(for: .milliseconds(10))
                }
            }
            throw HTTPTestFailure("no TLS handshake within 20 s")
        }
        return connection
    }

    /// The certificate the server presented (TLS only).
    public func peerCertificate() async throws -> NIOSSLCertificate? {
        try await channel.nioSSL_peerCertificate().get()
    }

    /// The presented certificate in DER (TLS only).
    public func peerCertificateDER() async throws -> [UInt8]? {
        try await peerCertificate()?.toDERBytes()
    }

    /// The protocol ALPN chose (TLS only).
    public var negotiatedProtocol: String? {
        if case .success(let name) = state.withLockedValue({ $0.handshake }) { return name }
        return nil
    }

    public func send(_ text: String) async throws {
        try await channel.writeAndFlush(ByteBuffer(string: text))
    }

    public func send(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
    }

    /// Sends a request with `Host: host` (none when nil) and reads its answer.
    public func request(
        _ method: String = "GET", _ target: String = "/", host: String?, headers: [(String, String)] = [],
        body: String? = nil
    ) async throws -> RawHTTPResponse {
        try await send(HTTPRequestText.make(method, target, host: host, headers: headers, body: body))
        return try await readResponse(toHEAD: method == "HEAD")
    }

    /// Waits for one complete answer and takes it off what was received.
    /// Informational answers (1xx) are skipped unless `informational`.
    public func readResponse(
        toHEAD: Bool = false, informational: Bool = false, timeout: Duration = .seconds(20)
    ) async throws -> RawHTTPResponse {
        let deadline = ContinuousClock.now + timeout
        while true {
            let parsed = try state.withLockedValue { state -> RawHTTPResponse? in
                while true {
                    guard
                        let (response, length) = try HTTPResponseParser.parse(
                            state.bytes, toHEAD: toHEAD, atEOF: state.closed)
                    else { return nil }
                    state.bytes.removeFirst(length)
                    if (100..<200).contains(response.status) && response.status != 101 && !informational { continue }
                    return response
                }
            }
            if let parsed { return parsed }
            if state.withLockedValue({ $0.closed }) {
                throw HTTPTestFailure("connection closed before a complete answer; got: \(text.prefix(300))")
            }
            guard ContinuousClock.now < deadline else {
                throw HTTPTestFailure("no complete answer in time; got: \(text.prefix(300))")
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// What was received and not yet taken as an answer.
    public var text: String { String(decoding: state.withLockedValue { $0.bytes }, as: UTF8.self) }

    /// Takes every byte received so far.
    public func takeBytes() -> [UInt8] {
        state.withLockedValue { state in
            defer { state.bytes.removeAll() }
            return state.bytes
        }
    }

    /// Waits until at least `count` bytes are there (or the timeout).
    public func waitForBytes(_ count: Int, timeout: Duration = .seconds(20)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if state.withLockedValue({ $0.bytes.count }) >= count { return true }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return false
    }

    /// Waits until the server closed the connection.
    public func waitForClose(timeout: Duration = .seconds(20)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if state.withLockedValue({ $0.closed }) { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return false
    }

    public var isClosed: Bool { state.withLockedValue { $0.closed } }

    public func close() async {
        try? await channel.close()
    }
}

/// A test failure with a message.
public struct HTTPTestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

final class ResponseBytesCollector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let state: NIOLockedValueBox<HTTPTestConnection.State>

    init(state: NIOLockedValueBox<HTTPTestConnection.State>) { self.state = state }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        state.withLockedValue { $0.bytes += buffer.readableBytesView }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted(let negotiated) = event as? TLSUserEvent {
            state.withLockedValue { $0.handshake = .success(negotiated) }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        state.withLockedValue { state in
            if state.handshake == nil { state.handshake = .failure(error) }
        }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        state.withLockedValue { $0.closed = true }
        context.fireChannelInactive()
    }
}

/// Request text for tests.
public enum HTTPRequestText {
    /// `METHOD TARGET HTTP/1.1` with `Host: host` (left out when nil), the
    /// headers, and a `Content-Length` body if any.
    public static func make(
        _ method: String = "GET", _ target: String = "/", host: String?, headers: [(String, String)] = [],
        body: String? = nil, version: String = "HTTP/1.1"
    ) -> String {
        var text = "\(method) \(target) \(version)\r\n"
        if let host { text += "Host: \(host)\r\n" }
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        if let body { text += "Content-Length: \(body.utf8.count)\r\n" }
        text += "\r\n"
        if let body { text += body }
        return text
    }
}

/// Parses HTTP/1.1 answers from raw bytes: `Content-Length`, chunked, or
/// (with no framing) up to the end of the connection.
public enum HTTPResponseParser {
    /// The first complete answer in `bytes` and how many bytes it took; nil
    /// while it is incomplete.
    public static func parse(_ bytes: [UInt8], toHEAD: Bool, atEOF: Bool) throws -> (RawHTTPResponse, Int)? {
        guard let headEnd = find([13, 10, 13, 10], in: bytes, from: 0) else { return nil }
        let headText = String(decoding: bytes[..<headEnd], as: UTF8.self)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ", maxSplits: 2)
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else {
            throw HTTPTestFailure("bad status line in \(headText.prefix(200))")
        }
        let headers: [(String, String)] = lines.compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        var response = RawHTTPResponse(status: status, headers: headers, body: [])
        let bodyStart = headEnd + 4
        if toHEAD || (100..<200).contains(status) || status == 204 || status == 304 {
            return (response, bodyStart)
        }
        if let length = response.header("content-length").flatMap({ Int($0) }) {
            guard bytes.count >= bodyStart + length else { return nil }
            response.body = Array(bytes[bodyStart..<(bodyStart + length)])
            return (response, bodyStart + length)
        }
        if response.header("transfer-encoding")?.lowercased().contains("chunked") == true {
            var position = bodyStart
            var body: [UInt8] = []
            while true {
                guard let lineEnd = find([13, 10], in: bytes, from: position) else { return nil }
                let sizeText = String(decoding: bytes[position..<lineEnd], as: UTF8.self)
                guard let size = Int(sizeText.split(separator: ";").first ?? "", radix: 16) else {
                    throw HTTPTestFailure("bad chunk size \(sizeText)")
                }
                position = lineEnd + 2
                if size == 0 {
                    // Trailers, then an empty line.
                    while true {
                        guard let end = find([13, 10], in: bytes, from: position) else { return nil }
                        let isEmpty = end == position
                        if !isEmpty {
                            let line = String(decoding: bytes[position..<end], as: UTF8.self)
                            if let colon = line.firstIndex(of: ":") {
                                response.trailers.append(
                                    (String(line[..<colon]),
                                     line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
                            }
                        }
                        position = end + 2
                        if isEmpty { break }
                    }
                    response.body = body
                    response.wasChunked = true
                    return (response, position)
                }
                guard bytes.count >= position + size + 2 else { return nil }
                body += bytes[position..<(position + size)]
                position += size + 2
            }
        }
        // No framing: the body runs to the end of the connection.
        guard atEOF else { return nil }
        response.body = Array(bytes[bodyStart...])
        return (response, bytes.count)
    }

    static func find(_ marker: [UInt8], in bytes: [UInt8], from start: Int) -> Int? {
        guard bytes.count >= marker.count, start <= bytes.count - marker.count else { return nil }
        for i in start...(bytes.count - marker.count) where bytes[i] == marker[0] {
            if bytes[i..<(i + marker.count)].elementsEqual(marker) { return i }
        }
        return nil
    }
}
