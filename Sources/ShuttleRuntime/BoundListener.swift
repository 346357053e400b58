import NIOCore

/// A service's listening socket as the driver holds it: a SwiftNIO channel
/// (on the NIO relays) or a socket of our own epoll loops.
enum BoundListener: Sendable {
    case channel(any Channel)
    #if os(Linux)
    case splice(SpliceListener)
    case datagram(DatagramService)
    #endif

    /// Where it listens, `ip:port`.
    var address: String? {
        switch self {
        case .channel(let channel): return channel.localAddress.map(Driver.describe)
        #if os(Linux)
        case .splice(let listener): return listener.address
        case .datagram(let service): return service.address
        #endif
        }
    }

    /// Stops accepting; connections already accepted go on.
    func close(on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        switch self {
        case .channel(let channel): return channel.close()
        #if os(Linux)
        case .splice(let listener): return listener.close(on: eventLoop)
        case .datagram(let service): return service.close(on: eventLoop)
        #endif
        }
    }
}
