import NIOCore
import NIOEmbedded
import NIOHTTP1

/// What NIOHTTP1 (llhttp, strict) reads from some bytes: each message's
/// head, body and whether it ended, or the error it stopped at.
public struct NIOReading {
    public struct Message: Sendable {
        public var method = ""
        public var status = 0
        public var uri = ""
        public var minorVersion = 0
        public var fields: [(String, String)] = []
        public var body: [UInt8] = []
        public var ended = false
    }
    public var messages: [Message] = []
    public var failed = false

    /// Requests, through an HTTPRequestDecoder.
    public static func requests(_ bytes: [UInt8]) -> NIOReading {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(HTTPRequestDecoder()))
        var reading = NIOReading()
        do {
            try channel.writeInbound(ByteBuffer(bytes: bytes))
        } catch {
            reading.failed = true
        }
        while let part = try? channel.readInbound(as: HTTPServerRequestPart.self) {
            switch part {
            case .head(let head):
                reading.messages.append(
                    Message(
                        method: head.method.rawValue, uri: head.uri, minorVersion: head.version.minor,
                        fields: head.headers.map { ($0.name, $0.value) }))
            case .body(let buffer): reading.messages[reading.messages.count - 1].body += Array(buffer.readableBytesView)
            case .end: reading.messages[reading.messages.count - 1].ended = true
            }
        }
        _ = try? channel.finish()
        return reading
    }

    /// Responses to GET requests, through an HTTPResponseDecoder that saw
    /// the requests go out; `close` ends the input as a closed connection.
    public static func responses(_ bytes: [UInt8], requests: Int, close: Bool) -> NIOReading {
        let channel = EmbeddedChannel()
        var reading = NIOReading()
        do {
            try channel.pipeline.syncOperations.addHandler(HTTPRequestEncoder())
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPResponseDecoder()))
            for _ in 0..<requests {
                try channel.writeOutbound(
                    HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")))
                try channel.writeOutbound(HTTPClientRequestPart.end(nil))
            }
            try channel.writeInbound(ByteBuffer(bytes: bytes))
            if close { channel.pipeline.fireChannelInactive() }
        } catch {
            reading.failed = true
        }
        while let part = try? channel.readInbound(as: HTTPClientResponsePart.self) {
            switch part {
            case .head(let head):
                reading.messages.append(
                    Message(
                        status: Int(head.status.code), minorVersion: head.version.minor,
                        fields: head.headers.map { ($0.name, $0.value) }))
            case .body(let buffer): reading.messages[reading.messages.count - 1].body += Array(buffer.readableBytesView)
            case .end: reading.messages[reading.messages.count - 1].ended = true
            }
        }
        _ = try? channel.finish()
        return reading
    }
}
