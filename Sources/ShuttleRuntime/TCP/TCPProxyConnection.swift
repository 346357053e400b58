import Logging
import NIOCore
import NIOPosix
import ShuttleModel

/// One client of a TCP service: placed on a backend by the model (with
/// failover on connect errors, as the model decides), then glued to it.
/// Everything here runs on the client channel's event loop.
final class TCPProxyConnection: PlacedClient, @unchecked Sendable {  // confined to the client's event loop
    let id: ConnectionID
    let client: any Channel
    let driver: Driver
    /// The client's half of the glue, in its pipeline from the start so that
    /// nothing is read from the client before a backend is there to take it.
    private let clientSide = GlueHandler()
    private var backendSide: GlueHandler?
    private var backend: (any Channel)?
    private var connecting = false
    private var clientClosed = false
    private var reported = (sent: 0, received: 0)
    private var lastReport = NIODeadline.now()

    /// Reads grow up to 256 KiB while a side keeps filling them (SwiftNIO's
    /// default stops at 64 KiB): fewer system calls per byte in bulk.
    static let readAllocator = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 2048, maximum: 256 * 1024)

    /// Byte counts reach the model at close and at most this often meanwhile.
    static let reportInterval = TimeAmount.seconds(1)

    private init(id: ConnectionID, client: any Channel, driver: Driver) {
        self.id = id
        self.client = client
        self.driver = driver
    }

    /// Called from the child channel's initializer.
    static func start(client: any Channel, listener: ListenerID, driver: Driver) throws {
        let connection = TCPProxyConnection(id: driver.makeConnectionID(), client: client, driver: driver)
        try client.pipeline.syncOperations.addHandler(connection.clientSide)
        connection.clientSide.onReadComplete = { [weak connection] in connection?.reportIfDue() }
        client.closeFuture.whenComplete { _ in connection.clientDidClose() }
        let key = BalanceKey(client.remoteAddress?.ipAddress ?? "")
        switch driver.place(connection.id, listener: listener, key: key) {
        case .connect(let target): connection.connect(target)
        case .close(let reason): connection.closeWithoutBackend(reason)
        }
    }

    func closeWithoutBackend(_ reason: CloseReason) {
        driver.logClosedWithoutBackend(client: client.remoteAddress.map(Driver.describe) ?? "?", reason: reason)
        client.close(promise: nil)
    }

    func connect(_ target: BackendTarget) {
        guard case .success(let address) = HostPort.parse(target.address, listening: false) else {
            carryOut(driver.send(.backendConnectFailed(id, reason: "bad address \(target.address)")))
            return
        }
        connecting = true
        let backendSide = GlueHandler()
        backendSide.onReadComplete = { [weak self] in self?.reportIfDue() }
        var bootstrap = ClientBootstrap(group: client.eventLoop)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelOption(.recvAllocator, value: Self.readAllocator)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if target.serverTimeout > 0 {
                        let idle = TimeAmount.milliseconds(Int64(target.serverTimeout))
                        try channel.pipeline.syncOperations.addHandlers(IdleStateHandler(allTimeout: idle), IdleCloser())
                    }
                    try channel.pipeline.syncOperations.addHandler(backendSide)
                }
            }
        if target.connectTimeout > 0 {
            bootstrap = bootstrap.connectTimeout(.milliseconds(Int64(target.connectTimeout)))
        }
        let started = NIODeadline.now()
        bootstrap.connect(to: address).whenComplete { result in
            self.connecting = false
            switch result {
            case .success(let channel):
                self.driver.metrics.recordConnect(
                    service: target.service, backend: target.name, nanoseconds: (NIODeadline.now() - started).nanoseconds)
                self.driver.send(.backendConnected(self.id))
                if self.clientClosed {
                    channel.close(promise: nil)
                    self.finish()
                } else {
                    self.glue(channel, backendSide, target)
                }
            case .failure(let error):
                let reason = Driver.describe(error)
                self.driver.logConnectFailure(to: target, reason: reason)
                let actions = self.driver.send(.backendConnectFailed(self.id, reason: reason))
                if self.clientClosed {
                    self.finish()
                } else {
                    self.carryOut(actions)
                }
            }
        }
    }

    private func glue(_ channel: any Channel, _ backendSide: GlueHandler, _ target: BackendTarget) {
        backend = channel
        self.backendSide = backendSide
        if target.clientTimeout > 0 {
            let idle = TimeAmount.milliseconds(Int64(target.clientTimeout))
            do {
                try client.pipeline.syncOperations.addHandlers(
                    [IdleStateHandler(allTimeout: idle), IdleCloser()], position: .first)
            } catch {
                client.close(promise: nil)
            }
        }
        channel.closeFuture.whenComplete { _ in self.client.close(promise: nil) }
        GlueHandler.pair(clientSide, backendSide)
    }

    private func reportIfDue() {
        let now = NIODeadline.now()
        guard now - lastReport >= Self.reportInterval else { return }
        lastReport = now
        reportBytes()
    }

    private func reportBytes() {
        let sent = clientSide.bytesRead - reported.sent
        let received = (backendSide?.bytesRead ?? 0) - reported.received
        guard sent > 0 || received > 0 else { return }
        reported = (clientSide.bytesRead, backendSide?.bytesRead ?? 0)
        driver.send(.bytesTransferred(id, sent: sent, received: received))
    }

    private func clientDidClose() {
        clientClosed = true
        backend?.close(promise: nil)
        // A connect in flight reports the end itself when it completes.
        if !connecting { finish() }
    }

    private func finish() {
        reportBytes()
        driver.send(.connectionClosed(id))
        backend = nil
    }
}

extension ClientBootstrap {
    /// Connects to an IP address directly; only a host name goes through
    /// the resolver (and happy eyeballs), which costs a connection far more
    /// than the connect itself.
    func connect(to address: HostPort) -> EventLoopFuture<any Channel> {
        switch address.host {
        case .ipv4(let ip), .ipv6(let ip):
            if let socketAddress = try? SocketAddress(ipAddress: ip, port: address.port) {
                return connect(to: socketAddress)
            }
        case .name, .any:
            break
        }
        return connect(host: address.hostString, port: address.port)
    }
}
