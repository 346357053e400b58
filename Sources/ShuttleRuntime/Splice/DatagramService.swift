#if os(Linux)
import CShuttleSplice
import Glibc
import Logging
import NIOCore
import ShuttleModel
import Synchronization

/// A UDP service's socket on the epoll relay (`-udp-relay epoll`), served
/// by one relay loop. Datagrams are read in batches (recvmmsg); those from
/// each client address form a flow, placed on a backend by the model and
/// sent on from a connected socket of its own, a batch's worth at a time
/// (sendmmsg). The backends' replies are read in batches into `replies`
/// and go back to their clients from the service's socket together, when
/// it is full or when the loop's batch of events ends. The same contract
/// with the model, the same limits and the same idle timeout as
/// `UDPServiceHandler`.
final class DatagramService: SpliceSource, @unchecked Sendable {  // confined to its loop but for `close`
    let id: ListenerID
    let fd: Int32
    let driver: Driver
    /// Unchecked, like `SpliceConnection.loop`: the loop holds its services.
    unowned(unsafe) let loop: SpliceLoop
    /// Where it listens, `ip:port`.
    let address: String
    private let closing = Atomic<Bool>(false)
    private var flows: [FlowKey: DatagramFlow] = [:]
    private var nextSweep: UInt64 = 0
    /// Flows that got datagrams in the batch being read, in order.
    private var touched: [DatagramFlow] = []
    /// Replies gathered to be sent back together.
    let replies = DatagramBatch()
    /// Nonzero while the way back to the clients takes segmented sends.
    private var segmentation: Int32 = 1
    /// "datagrams dropped: no backend", at most once a second.
    var noBackendWarnings = WarningLimiter()
    private var isOpen = false

    static let tag: UInt64 = 4
    /// Read batches per wake-up: the socket is level-triggered, so what
    /// is left wakes the loop again after the other sources had a turn.
    static let batchesPerWakeup = 4
    static let sweepInterval: UInt64 = 1_000_000_000

    private init(id: ListenerID, fd: Int32, driver: Driver, loop: SpliceLoop, address: String) {
        self.id = id
        self.fd = fd
        self.driver = driver
        self.loop = loop
        self.address = address
    }

    /// Binds (on the caller's thread) and hands the socket to a relay loop.
    static func bind(_ listener: Listener, driver: Driver, relay: SpliceRelay) throws -> DatagramService {
        let address = try SpliceAddress.listening(on: listener)
        let fd = cshuttle_udp_socket(address.family)
        guard fd >= 0 else { throw SpliceError.system(describeErrno("socket", errno)) }
        // Best effort: the kernel caps it at net.core.rmem_max and never refuses.
        var receiveBuffer = FlowLimits.serviceReceiveBuffer
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receiveBuffer, socklen_t(MemoryLayout<Int32>.size))
        // No SO_REUSEADDR: on a UDP socket it lets another socket that sets
        // it bind the same port (even bind(0) may hand out a port in use),
        // and the two share the datagrams. UDP has no TIME_WAIT to wait out.
        guard address.withSockaddr({ Glibc.bind(fd, $0, $1) }) == 0 else {
            let failure = errno
            Glibc.close(fd)
            throw SpliceError.system(describeErrno("bind(descriptor:ptr:bytes:)", failure))
        }
        let bound = SpliceAddress.local(of: fd)?.description ?? listener.address
        let loop = relay.nextLoop()
        let service = DatagramService(id: listener.id, fd: fd, driver: driver, loop: loop, address: bound)
        // Datagrams wait in the socket until the loop takes it up.
        loop.post { loop.add(service) }
        return service
    }

    /// On the loop: starts reading, unless closed meanwhile.
    func start() -> Bool {
        guard !closing.load(ordering: .relaxed) else {
            Glibc.close(fd)
            return false
        }
        guard loop.register(fd, events: UInt32(CSHUTTLE_EPOLLIN), source: self, tag: Self.tag) else {
            driver.logger.error(
                "cannot watch a UDP socket", metadata: ["address": "\(address)", "error": "\(describeErrno("epoll_ctl", errno))"])
            Glibc.close(fd)
            return false
        }
        nextSweep = loop.now + Self.sweepInterval
        isOpen = true
        return true
    }

    override func handle(_ events: UInt32, tag: UInt64, loop: SpliceLoop) {
        let batch = loop.datagrams
        for _ in 0..<Self.batchesPerWakeup {
            let count = batch.receive(from: fd)
            guard count > 0 else { return }  // EAGAIN; errors of a UDP socket are not the service's end
            for index in 0..<count {
                guard batch.truncated[index] == 0, let key = FlowKey(batch.addresses + index) else { continue }
                let flow = flows[key] ?? newFlow(key, sender: batch.addresses + index, length: batch.addressLengths[index])
                if flow.batched.isEmpty { touched.append(flow) }
                flow.batched.append(index)
            }
            for flow in touched { flow.forward(batch) }
            touched.removeAll(keepingCapacity: true)
            if count < DatagramBatch.count { return }
        }
    }

    private func newFlow(_ key: FlowKey, sender: UnsafePointer<sockaddr_storage>, length: UInt32) -> DatagramFlow {
        if flows.count >= driver.udpFlowLimit, let oldest = FlowLimits.victim(in: flows, lastActive: { $0.lastActive }) {
            flows.removeValue(forKey: oldest)?.end()
        }
        var client = SpliceAddress()
        client.storage = sender.pointee
        client.length = socklen_t(length)
        let flow = DatagramFlow(id: driver.makeConnectionID(), key: key, client: client, service: self)
        flows[key] = flow
        flow.begin(listener: id)
        return flow
    }

    /// `count` more replies were read into `replies` (their addresses set):
    /// sent at once if it is full, else when the loop's batch ends.
    func repliesAdded(_ count: Int) {
        let first = replies.used == 0
        replies.used += count
        if replies.used == DatagramBatch.count {
            flushReplies()
        } else if first {
            loop.flushAfterBatch(self)
        }
    }

    /// Sends the gathered replies, each to its client.
    func flushReplies() {
        let count = replies.used
        guard count > 0 else { return }
        replies.used = 0
        guard isOpen else { return }
        for index in 0..<count {
            replies.outgoing[index] = replies.slot(index)
            replies.outgoingLengths[index] = replies.lengths[index]
        }
        replies.sendOutgoing(on: fd, count: count, addressed: true, segmentation: &segmentation)
    }

    func remove(_ flow: DatagramFlow) {
        if flows[flow.key] === flow { flows.removeValue(forKey: flow.key) }
        loop.retire(flow)
    }

    /// Ends the flows idle past their timeout; reports the others' bytes.
    func tick(_ now: UInt64) {
        guard now >= nextSweep else { return }
        nextSweep = now + Self.sweepInterval
        for (key, flow) in flows {
            if now &- flow.lastActive >= flow.timeout {
                flows.removeValue(forKey: key)
                flow.end()
            } else {
                flow.reportIfDue(now)
            }
        }
    }

    /// Stops reading: the socket closes and its flows end (their replies
    /// have no way back without it).
    func close(on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        guard !closing.exchange(true, ordering: .relaxed) else {
            promise.succeed()
            return promise.futureResult
        }
        loop.post { [self] in
            if loop.remove(self) { abort() }
            promise.succeed()
        }
        return promise.futureResult
    }

    /// On the loop: closes the socket and ends every flow.
    func abort() {
        isOpen = false
        replies.used = 0
        _ = cshuttle_epoll_remove(loop.epoll, fd)
        Glibc.close(fd)
        let ending = flows.values
        flows.removeAll()
        for flow in ending { flow.end() }
    }
}
#endif
