#if os(Linux)
import CShuttleSplice
import Glibc
import Logging
import ShuttleModel

/// One client's flow on the epoll UDP relay: a connected socket of its own
/// to the backend the model chose, its datagrams of each read batch sent on
/// together, the backend's replies read in batches and sent back from the
/// service's socket. Reports to the
/// model as `UDPFlow` does: `.backendConnected` or `.backendConnectFailed`
/// per attempt, bytes at most once a second and at the end,
/// `.connectionClosed` once.
final class DatagramFlow: SpliceSource, PlacedClient, @unchecked Sendable {  // confined to its loop's thread
    let id: ConnectionID
    let driver: Driver
    let key: FlowKey
    let client: SpliceAddress
    /// Unchecked, like `SpliceConnection.loop`: the service holds its flows
    /// and only its loop calls them.
    unowned(unsafe) let service: DatagramService
    var loop: SpliceLoop { service.loop }

    private enum State {
        /// Waiting for the model, or between attempts.
        case placing
        /// A backend's host name is being resolved.
        case resolving
        case connected
        case ended
    }

    private var state = State.placing
    private var backend: Int32 = -1
    /// Datagrams held while the backend's name resolves.
    private var queued: [[UInt8]] = []
    /// Tells a resolution's answer from an earlier attempt's.
    private var attempt = 0
    private(set) var lastActive: UInt64
    private(set) var timeout = UInt64(UDPServiceHandler.defaultFlowTimeout.nanoseconds)
    private var sent = 0
    private var received = 0
    private var lastReport: UInt64
    /// Slots of the service's read batch that hold this flow's datagrams.
    var batched: [Int] = []
    /// Nonzero while the path to the backend takes segmented sends.
    private var segmentation: Int32 = 1

    static let tag: UInt64 = 5
    static let reportInterval: UInt64 = 1_000_000_000
    /// Reply batches read per wake-up before the loop goes on
    /// (level-triggered: the rest wake it again).
    static let readsPerWakeup = 4

    init(id: ConnectionID, key: FlowKey, client: SpliceAddress, service: DatagramService) {
        self.id = id
        self.key = key
        self.client = client
        self.service = service
        self.driver = service.driver
        lastActive = service.loop.now
        lastReport = service.loop.now
    }

    func begin(listener: ListenerID) {
        switch driver.place(id, listener: listener, key: BalanceKey(client.ipString)) {
        case .connect(let target): connect(target)
        case .close(let reason): closeWithoutBackend(reason)
        }
    }

    func closeWithoutBackend(_ reason: CloseReason) {
        let (say, heldBack) = service.noBackendWarnings.shouldSay(now: loop.now)
        if say {
            driver.logger.warning(
                "datagrams dropped: no backend",
                metadata: [
                    "client": "\(client.description)", "reason": "\(reason)", "held_back": "\(heldBack)",
                ])
        }
        state = .ended
        queued.removeAll()
        service.remove(self)
    }

    // MARK: Connecting

    func connect(_ target: BackendTarget) {
        guard state != .ended else { return }
        if target.clientTimeout > 0 { timeout = UInt64(target.clientTimeout) * 1_000_000 }
        state = .placing
        attempt += 1
        let asked = attempt
        let location = loop.locate(target) { [self] result in
            // The flow ended, or a later attempt began, meanwhile.
            guard state == .resolving, attempt == asked else { return }
            switch result {
            case .success(let resolved): open(resolved, for: target)
            case .failure(let error): connectFailed(target, error.description)
            }
        }
        switch location {
        case .known(let address): open(address, for: target)
        case .resolving: state = .resolving
        case .unusable(let reason): connectFailed(target, reason)
        }
    }

    /// A UDP connect only sets the socket's peer: it succeeds or fails at once.
    private func open(_ address: SpliceAddress, for target: BackendTarget) {
        let fd = cshuttle_udp_socket(address.family)
        guard fd >= 0 else {
            connectFailed(target, describeErrno("socket", errno))
            return
        }
        guard address.withSockaddr({ Glibc.connect(fd, $0, $1) }) == 0 else {
            let failure = errno
            Glibc.close(fd)
            connectFailed(target, describeErrno("connect", failure))
            return
        }
        guard loop.register(fd, events: UInt32(CSHUTTLE_EPOLLIN), source: self, tag: Self.tag) else {
            let failure = errno
            Glibc.close(fd)
            connectFailed(target, describeErrno("epoll_ctl", failure))
            return
        }
        backend = fd
        state = .connected
        loop.report(.backendConnected(id), to: driver)
        let held = queued
        queued.removeAll()
        for datagram in held {
            datagram.withUnsafeBytes {
                if Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) >= 0 { sent += $0.count }
            }
        }
    }

    private func connectFailed(_ target: BackendTarget, _ reason: String) {
        state = .placing
        driver.logConnectFailure(to: target, reason: reason, message: "UDP backend socket failed")
        carryOut(driver.send(.backendConnectFailed(id, reason: reason)))
    }

    // MARK: Datagrams

    /// The client's datagrams of the read batch (`batched`): sent on in one
    /// system call, or held while the backend's name resolves. One the
    /// socket refuses (its buffer full, an ICMP error pending) is dropped,
    /// as the network would drop it.
    func forward(_ batch: DatagramBatch) {
        defer { batched.removeAll(keepingCapacity: true) }
        switch state {
        case .connected:
            lastActive = loop.now
            var bytes = 0
            for (position, index) in batched.enumerated() {
                batch.outgoing[position] = batch.slot(index)
                batch.outgoingLengths[position] = batch.lengths[index]
                bytes += batch.lengths[index]
            }
            let went = batch.sendOutgoing(
                on: backend, count: batched.count, addressed: false, segmentation: &segmentation)
            if went >= 0 { sent += bytes }
        case .placing, .resolving:
            lastActive = loop.now
            for index in batched where queued.count < UDPServiceHandler.maximumQueued {
                queued.append(Array(UnsafeRawBufferPointer(start: batch.slot(index), count: batch.lengths[index])))
            }
        case .ended:
            break
        }
    }

    /// The backend's replies, read into the service's batch of replies
    /// with their client as the address, to go back together.
    override func handle(_ events: UInt32, tag: UInt64, loop: SpliceLoop) {
        guard state == .connected else { return }
        let replies = service.replies
        for _ in 0..<Self.readsPerWakeup {
            let first = replies.used
            let room = DatagramBatch.count - first
            let count = replies.receive(from: backend, first: first)
            if count < 0 {
                // An ICMP error (port unreachable) is said once; the flow lives on until idle.
                if errno == EINTR || errno == ECONNREFUSED { continue }
                return
            }
            for index in first..<(first + count) {
                replies.addresses[index] = client.storage
                replies.addressLengths[index] = UInt32(client.length)
                received += replies.lengths[index]
            }
            lastActive = loop.now
            service.repliesAdded(count)
            if count < room { return }  // the socket is empty
        }
    }

    // MARK: Ending

    func reportIfDue(_ now: UInt64) {
        guard now &- lastReport >= Self.reportInterval else { return }
        lastReport = now
        report(closed: false)
    }

    /// Ends the flow (idle, evicted, or the service closed).
    func end() {
        guard state != .ended else { return }
        state = .ended
        queued.removeAll()
        if backend >= 0 {
            Glibc.close(backend)
            backend = -1
        }
        loop.retire(self)
        report(closed: true)
    }

    private func report(closed: Bool) {
        if closed {
            loop.report(.connectionEnded(id, sent: sent, received: received), to: driver)
        } else if sent > 0 || received > 0 {
            loop.report(.bytesTransferred(id, sent: sent, received: received), to: driver)
        }
        sent = 0
        received = 0
    }
}
#endif
