import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A test client: connects, sends, and collects what comes back.
public final class TCPClient: Sendable {
    public let channel: any Channel
    let received: NIOLockedValueBox<(bytes: [UInt8], inputClosed: Bool)>

    private init(channel: any Channel, received: NIOLockedValueBox<(bytes: [UInt8], inputClosed: Bool)>) {
        self.channel = channel
        self.received = received
    }

    public static func connect(port: Int, group: any EventLoopGroup, autoRead: Bool = true) async throws -> TCPClient {
        let box = NIOLockedValueBox<(bytes: [UInt8], inputClosed: Bool)>(([], false))
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelOption(.autoRead, value: autoRead)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Collector(box: box))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return TCPClient(channel: channel, received: box)
    }

    public func send(_ text: String) async throws {
        try await channel.writeAndFlush(ByteBuffer(string: text))
    }

    public func shutdownWrite() async throws {
        try await channel.close(mode: .output)
    }

    public var text: String { String(decoding: received.withLockedValue { $0.bytes }, as: UTF8.self) }

    public var isClosed: Bool { !channel.isActive }

    /// Waits (up to `timeout`) until what was received satisfies `condition`;
    /// returns it either way.
    @discardableResult
    public func waitFor(timeout: Duration = .seconds(30), _ condition: (String) -> Bool) async -> String {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition(text) { return text }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return text
    }

    /// Waits until the peer has closed the connection (or `timeout`).
    public func waitForClose(timeout: Duration = .seconds(30)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if isClosed || received.withLockedValue({ $0.inputClosed }) { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        // A busy machine may have kept this task from looking in time.
        return isClosed || received.withLockedValue({ $0.inputClosed })
    }

    public func close() async {
        try? await channel.close()
    }
}

final class Collector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let box: NIOLockedValueBox<(bytes: [UInt8], inputClosed: Bool)>
    init(box: NIOLockedValueBox<(bytes: [UInt8], inputClosed: Bool)>) { self.box = box }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        box.withLockedValue { $0.bytes += buffer.readableBytesView }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            box.withLockedValue { $0.inputClosed = true }
        }
    }
}

/// Connects, reads the backend's name line, closes.
public func nameThroughProxy(port: Int, group: any EventLoopGroup) async throws -> String {
    let client = try await TCPClient.connect(port: port, group: group)
    let text = await client.waitFor { $0.contains("\n") }
    await client.close()
    return String(text.prefix { $0 != "\n" })
}

/// Polls `condition` until it holds or `timeout` passes.
public func eventually(timeout: Duration = .seconds(30), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

/// Binds again on a port the test closed a moment ago. Another test running
/// in parallel may have been given that port meanwhile; its sockets are
/// short-lived, so this tries again for a while before giving up.
public func rebinding<T>(timeout: Duration = .seconds(20), _ bind: () async throws -> T) async throws -> T {
    let deadline = ContinuousClock.now + timeout
    while true {
        do {
            return try await bind()
        } catch {
            guard ContinuousClock.now < deadline else { throw error }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}

/// Waits until a count of bytes written stops growing for half a second (a
/// writer held back by a reader that does not read), at most 50 s, and
/// returns where it stopped. A starved writer can only make it stop early.
public func writesStalled(_ written: NIOLockedValueBox<Int>) async throws -> Int {
    var last = -1
    for _ in 0..<100 {
        try await Task.sleep(for: .milliseconds(500))
        let now = written.withLockedValue { $0 }
        if now == last { break }
        last = now
    }
    return written.withLockedValue { $0 }
}
