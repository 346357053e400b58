import NIOCore
import NIOPosix
import ShuttleModel

/// A UDP service's socket. Datagrams from each client address form a flow,
/// placed on a backend by the model; the backend's replies go back to that
/// client from the service's address. (The original forwarded one way only.)
enum UDPListener {
    static func bind(_ listener: Listener, driver: Driver) -> EventLoopFuture<any Channel> {
        guard case .success(let address) = HostPort.parse(listener.address, listening: true) else {
            return driver.control.makeFailedFuture(ListenError.badAddress(listener.address))
        }
        let host = address.host == .any ? (listener.network == .udp6 ? "::" : "0.0.0.0") : address.hostString
        // No SO_REUSEADDR (see DatagramService.bind): a UDP port in use is an error.
        return DatagramBootstrap(group: driver.group)
            .channelOption(.maxMessagesPerRead, value: UInt(UDPServiceHandler.readBatch))
            .channelOption(.datagramVectorReadMessageCount, value: UDPServiceHandler.readBatch)
            .channelOption(.recvAllocator, value: UDPServiceHandler.readAllocator)
            .channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(FlowLimits.serviceReceiveBuffer))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        UDPServiceHandler(listener: listener.id, driver: driver))
                }
            }
            .bind(host: host, port: address.port)
            .map { $0 as any Channel }
    }
}

/// Keeps the flows of one UDP service. Runs on the service channel's loop.
final class UDPServiceHandler: ChannelInboundHandler, @unchecked Sendable {  // confined to its event loop
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    /// Flow idle time when the service sets no `client_timeout`.
    static let defaultFlowTimeout = TimeAmount.seconds(30)
    /// Datagrams held per flow while its backend socket is being set up.
    static let maximumQueued = 64
    /// Datagrams read per system call (recvmmsg) and per wake-up.
    static let readBatch = 16
    /// Room for the largest UDP datagram (65,507 bytes over IPv4, 65,527
    /// over IPv6): none is cut. (SwiftNIO's default, 2,048, cut longer ones.)
    static let maximumDatagram = 65_536
    /// One buffer per read batch of the service's socket, cut into
    /// `readBatch` datagrams; the pages the kernel does not write stay
    /// untouched, and the buffer is reused once its datagrams are sent.
    static var readAllocator: FixedSizeRecvByteBufferAllocator {
        FixedSizeRecvByteBufferAllocator(capacity: readBatch * maximumDatagram)
    }
    /// A flow's own socket reads one datagram per system call into a
    /// buffer of its own: a batch buffer per flow would hold 1 MiB each.
    static var replyAllocator: FixedSizeRecvByteBufferAllocator {
        FixedSizeRecvByteBufferAllocator(capacity: maximumDatagram)
    }

    let listener: ListenerID
    let driver: Driver
    var flows: [SocketAddress: UDPFlow] = [:]
    var context: ChannelHandlerContext?
    var sweeper: RepeatedTask?
    /// Flows written to since the last read batch ended: flushed together.
    var unflushed: [UDPFlow] = []
    /// Replies written to clients and not yet flushed.
    var repliesPending = false
    /// "datagrams dropped: no backend", at most once a second.
    var noBackendWarnings = WarningLimiter()

    init(listener: ListenerID, driver: Driver) {
        self.listener = listener
        self.driver = driver
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        sweeper = context.eventLoop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) {
            [weak self] _ in
            self?.expireIdleFlows()
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        sweeper?.cancel()
        for flow in flows.values { flow.end() }
        flows.removeAll()
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let client = envelope.remoteAddress
        let flow: UDPFlow
        if let existing = flows[client] {
            flow = existing
        } else {
            if flows.count >= driver.udpFlowLimit, let oldest = FlowLimits.victim(in: flows, lastActive: { $0.lastActive }) {
                flows.removeValue(forKey: oldest)?.end()
            }
            flow = UDPFlow(id: driver.makeConnectionID(), client: client, service: self)
            flows[client] = flow
            flow.begin(listener: listener)
        }
        if flow.forward(envelope.data) { unflushed.append(flow) }
    }

    /// The read batch ended: each flow sends what it got in one flush.
    func channelReadComplete(context: ChannelHandlerContext) {
        for flow in unflushed { flow.flush() }
        unflushed.removeAll(keepingCapacity: true)
        context.fireChannelReadComplete()
    }

    /// Sends a backend's reply to the flow's client from the service's
    /// socket; `flushReplies` sends what was written.
    func reply(_ data: ByteBuffer, to client: SocketAddress) {
        context?.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: client, data: data)), promise: nil)
        repliesPending = true
    }

    func flushReplies() {
        guard repliesPending else { return }
        repliesPending = false
        context?.flush()
    }

    func remove(_ flow: UDPFlow) {
        if flows[flow.client] === flow { flows.removeValue(forKey: flow.client) }
    }

    func expireIdleFlows() {
        let now = NIODeadline.now()
        for (client, flow) in flows where now - flow.lastActive >= flow.timeout {
            flows.removeValue(forKey: client)
            flow.end()
        }
    }
}

/// One client's flow: its own connected socket to the chosen backend.
final class UDPFlow: PlacedClient, @unchecked Sendable {  // confined to the service's event loop
    let id: ConnectionID
    let client: SocketAddress
    unowned let service: UDPServiceHandler
    var backend: (any Channel)?
    var queued: [ByteBuffer] = []
    var lastActive = NIODeadline.now()
    var timeout = UDPServiceHandler.defaultFlowTimeout
    var ended = false
    var connecting = false
    /// Datagrams written to the backend and not yet flushed.
    var writesPending = false
    var sent = 0
    var received = 0

    init(id: ConnectionID, client: SocketAddress, service: UDPServiceHandler) {
        self.id = id
        self.client = client
        self.service = service
    }

    var driver: Driver { service.driver }

    func begin(listener: ListenerID) {
        let key = BalanceKey(client.ipAddress ?? "")
        switch driver.place(id, listener: listener, key: key) {
        case .connect(let target): connect(target)
        case .close(let reason): closeWithoutBackend(reason)
        }
    }

    func closeWithoutBackend(_ reason: CloseReason) {
        let (say, heldBack) = service.noBackendWarnings.shouldSay(now: UInt64(NIODeadline.now().uptimeNanoseconds))
        if say {
            driver.logger.warning(
                "datagrams dropped: no backend",
                metadata: ["client": "\(client)", "reason": "\(reason)", "held_back": "\(heldBack)"])
        }
        ended = true
        queued.removeAll()
        service.remove(self)
    }

    func connect(_ target: BackendTarget) {
        guard let loop = service.context?.eventLoop,
            case .success(let address) = HostPort.parse(target.address, listening: false)
        else {
            carryOut(driver.send(.backendConnectFailed(id, reason: "bad address \(target.address)")))
            return
        }
        if target.clientTimeout > 0 { timeout = .milliseconds(Int64(target.clientTimeout)) }
        connecting = true
        DatagramBootstrap(group: loop)
            .channelOption(.maxMessagesPerRead, value: UInt(UDPServiceHandler.readBatch))
            .channelOption(.recvAllocator, value: UDPServiceHandler.replyAllocator)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(UDPReplyHandler(flow: self))
                }
            }
            .connect(host: address.hostString, port: address.port)
            .whenComplete { result in
                self.connecting = false
                switch result {
                case .success(let channel):
                    self.driver.send(.backendConnected(self.id))
                    if self.ended {
                        channel.close(promise: nil)
                        self.report(closed: true)
                        return
                    }
                    self.backend = channel
                    for datagram in self.queued { self.write(datagram, to: channel) }
                    self.queued.removeAll()
                    self.flush()
                case .failure(let error):
                    if self.ended {
                        self.driver.send(.backendConnectFailed(self.id, reason: Driver.describe(error)))
                        self.driver.send(.connectionClosed(self.id))
                    } else {
                        self.carryOut(self.driver.send(.backendConnectFailed(self.id, reason: Driver.describe(error))))
                    }
                }
            }
    }

    /// Sends a client's datagram on, or holds it while the backend socket
    /// is set up. True when it was written and the flow needs a flush.
    func forward(_ datagram: ByteBuffer) -> Bool {
        guard !ended else { return false }
        lastActive = NIODeadline.now()
        if let backend {
            let first = !writesPending
            write(datagram, to: backend)
            return first
        } else if queued.count < UDPServiceHandler.maximumQueued {
            // A copy of its own: the slice would hold the whole read batch's buffer.
            queued.append(ByteBuffer(bytes: datagram.readableBytesView))
        }
        return false
    }

    /// The backend socket is connected: a plain buffer needs no address.
    private func write(_ datagram: ByteBuffer, to backend: any Channel) {
        sent += datagram.readableBytes
        writesPending = true
        backend.write(datagram, promise: nil)
    }

    func flush() {
        guard writesPending else { return }
        writesPending = false
        backend?.flush()
    }

    func backendReplied(_ datagram: ByteBuffer) {
        lastActive = NIODeadline.now()
        received += datagram.readableBytes
        service.reply(datagram, to: client)
    }

    /// Ends the flow (idle, evicted, or the service closed).
    func end() {
        guard !ended else { return }
        ended = true
        if let backend {
            backend.close(promise: nil)
            self.backend = nil
            report(closed: true)
        } else if !connecting {
            report(closed: true)
        }
    }

    func report(closed: Bool) {
        if sent > 0 || received > 0 {
            driver.send(.bytesTransferred(id, sent: sent, received: received))
            sent = 0
            received = 0
        }
        if closed { driver.send(.connectionClosed(id)) }
    }
}

/// Receives a flow's replies from its backend.
final class UDPReplyHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let flow: UDPFlow

    init(flow: UDPFlow) { self.flow = flow }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        flow.backendReplied(unwrapInboundIn(data).data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flow.service.flushReplies()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // ICMP port unreachable and the like: the flow lives on until idle.
    }
}
