import NIOCore

/// A service's listening socket as the driver holds it: a SwiftNIO channel
/// (UDP, and TCP on the NIO relay) or a splice relay's own socket.
enum BoundListener: Sendable {
    case channel(any Channel)
    #if os(Linux)
    case splice(SpliceListener)
    #endif

    /// Where it listens, `ip:port`.
    var address: String? {
        switch self {
        case .channel(let channel): return channel.localAddress.map(Driver.describe)
        #if os(Linux)
        case .splice(let listener): return listener.address
        #endif
        }
    }

    /// Stops accepting; connections already accepted go on.
    func close(on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        switch self {
        case .channel(let channel): return channel.close()
        #if os(Linux)
        case .splice(let listener): return listener.close(on: eventLoop)
        #endif
        }
    }
}
