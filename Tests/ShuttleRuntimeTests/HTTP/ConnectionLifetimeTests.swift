import NIOCore
import NIOEmbedded
import NIOHTTP1
import ShuttleModel
@testable import ShuttleRuntime
import Testing

/// A closed client connection leaves nothing behind: its handlers, its
/// pipeline and its exchange are freed (they once kept each other alive,
/// about 2.7 KiB per connection).
@Suite("HTTP client connections: nothing outlives a closed connection")
struct ConnectionLifetimeTests {
    /// Builds a client connection's pipeline on an embedded channel, runs
    /// `body` on it, closes it, and returns weak references to what it held.
    private func lifetime(
        _ harness: HTTPHarness, _ body: (EmbeddedChannel) throws -> Void
    ) throws -> (proxy: Weak, codec: Weak) {
        let channel = EmbeddedChannel()
        try HTTPFrontend.addHTTPHandlers(to: channel, frontend: harness.frontend, isTLS: false)
        let proxy = Weak(try channel.pipeline.syncOperations.handler(type: HTTPProxyHandler.self))
        let codec = Weak(try channel.pipeline.syncOperations.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 40000)).wait()
        try body(channel)
        _ = try channel.finish(acceptAlreadyClosed: true)
        return (proxy, codec)
    }

    @Test("a connection closed before any request frees its handlers")
    func idleConnection() async throws {
        let harness = try await HTTPHarness.start()
        let held = try lifetime(harness) { _ in }
        #expect(held.proxy.object == nil)
        #expect(held.codec.object == nil)
        await harness.shutdown()
    }

    @Test("a connection closed after a locally answered request frees its handlers")
    func answeredConnection() async throws {
        let harness = try await HTTPHarness.start()
        var answer = ByteBuffer()
        let held = try lifetime(harness) { channel in
            try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: nobody.test\r\n\r\n"))
            while let part = try channel.readOutbound(as: ByteBuffer.self) { answer.writeImmutableBuffer(part) }
        }
        #expect(String(buffer: answer).hasPrefix("HTTP/1.1 404"))
        #expect(held.proxy.object == nil)
        #expect(held.codec.object == nil)
        await harness.shutdown()
    }

    @Test("a connection closed in the middle of a request frees its handlers")
    func closedMidRequest() async throws {
        let harness = try await HTTPHarness.start()
        let held = try lifetime(harness) { channel in
            try channel.writeInbound(ByteBuffer(string: "POST / HTTP/1.1\r\nHost: nobody.test\r\nContent-Length: 10\r\n\r\nabc"))
        }
        #expect(held.proxy.object == nil)
        #expect(held.codec.object == nil)
        await harness.shutdown()
    }
}

/// A weak reference to a handler.
final class Weak {
    weak var object: AnyObject?
    init(_ object: AnyObject) { self.object = object }
}
