import ShuttleModel

/// What the operator meant an admin command to be, so that the checker can
/// tell an invalid update that was applied, or a valid one that was refused.
public enum Expectation: String, Sendable, Codable {
    case valid, invalid
}

/// One step of what the model saw: an event with the actions it answered,
/// or a restart of the proxy process (a fresh model, same state file).
public enum TraceStep: Sendable, Equatable {
    case event(Event, actions: [Action], expect: Expectation?)
    /// The proxy process started again; its model was made with this seed.
    case restart(seed: UInt64)
}

/// A step with the virtual (or, in a recording, monotonic) time it happened at.
public struct TimedStep: Sendable, Equatable {
    /// Nanoseconds.
    public var time: UInt64
    public var step: TraceStep

    public init(time: UInt64, step: TraceStep) {
        self.time = time
        self.step = step
    }
}

/// A running hash of everything that happened in a run: every simulated
/// event with its time, every model event and every action. Two runs with
/// the same seed give the same digest; any divergence changes it.
public struct TraceDigest: Sendable, Equatable {
    public private(set) var value: UInt64 = 0x6a09_e667_f3bc_c908

    public init() {}

    @inline(__always)
    mutating func mix(_ word: UInt64) {
        var z = (value ^ word) &+ 0x9e37_79b9_7f4a_7c15
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        value = z ^ (z >> 31)
    }

    @inline(__always)
    mutating func mix(_ a: UInt64, _ b: UInt64) {
        mix(a)
        mix(b)
    }

    /// Sixteen hex digits.
    public var hex: String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    mutating func mix(_ event: SimEvent, at time: UInt64) {
        mix(time)
        switch event {
        case .spawnClient: mix(1)
        case .adminChurn: mix(2)
        case .injectFault: mix(3)
        case .healFault(let i): mix(4, UInt64(i))
        case .modelTick: mix(5)
        case .segment(let c, let toAcceptor, let kind, let bytes):
            mix(6 | UInt64(kind.rawValue) << 8 | (toAcceptor ? 1 << 16 : 0), UInt64(UInt32(bitPattern: c)) << 32 | UInt64(UInt32(bitPattern: bytes)))
        case .connectTimeout(let c): mix(7, UInt64(c))
        case .datagram(let d): mix(8, UInt64(d))
        case .clientStep(let c): mix(9, UInt64(c))
        case .clientDeadline(let c): mix(10, UInt64(c))
        case .datagramDeadline(let d): mix(11, UInt64(d))
        case .serverReply(let c, let bytes): mix(12, UInt64(c) << 32 | UInt64(bytes))
        case .serverDatagramReply(let d): mix(13, UInt64(d))
        case .probe(let b, let g): mix(14, b << 32 | UInt64(g))
        case .idleCheck(let c, let g): mix(15, UInt64(c) << 32 | UInt64(g))
        case .udpSweep(let l, let e): mix(16, l << 32 | UInt64(e))
        case .udpConnected(let c): mix(17, UInt64(c))
        case .bindDone(let l, let e): mix(18, l << 32 | UInt64(e))
        case .proxyStart: mix(19)
        }
    }

    /// Mixes in an event and its actions by their kinds and identifiers.
    mutating func mix(_ event: Event, _ actions: [Action]) {
        switch event {
        case .admin(let id, _): mix(101, id.raw)
        case .listenerBound(let id, _): mix(102, id.raw)
        case .listenerFailed(let id, _): mix(103, id.raw)
        case .checkResult(let id, let passed): mix(104 | (passed ? 1 << 8 : 0), id.raw)
        case .clientConnected(let id, let listener, let key): mix(105, id.raw &+ listener.raw << 40 ^ key.value)
        case .backendConnected(let id): mix(106, id.raw)
        case .backendConnectFailed(let id, _): mix(107, id.raw)
        case .bytesTransferred(let id, let sent, let received):
            mix(108, id.raw)
            mix(UInt64(bitPattern: Int64(sent)) << 32 ^ UInt64(bitPattern: Int64(received)))
        case .connectionClosed(let id): mix(109, id.raw)
        case .requestReceived(let id, let request): mix(110, id.raw ^ request.key.value)
        case .requestFinished(let id, _): mix(111, id.raw)
        case .timeAdvanced(let instant): mix(112, instant.nanoseconds)
        }
        for action in actions {
            switch action {
            case .bindListener(let l): mix(201, l.id.raw)
            case .closeListener(let id): mix(202, id.raw)
            case .startHealthCheck(let c): mix(203, c.backend.raw)
            case .stopHealthCheck(let id): mix(204, id.raw)
            case .retireBackend(let id): mix(214, id.raw)
            case .persist(let config): mix(205, UInt64(config.services.count))
            case .reply(let id, let reply):
                switch reply {
                case .applied(let c): mix(206, id.raw << 8 | UInt64(c.services.count))
                case .rejected(let p): mix(207, id.raw << 8 | UInt64(p.count))
                case .notFound: mix(208, id.raw)
                case .bindFailed: mix(209, id.raw)
                }
            case .connectBackend(let id, let target): mix(210, id.raw << 20 ^ target.id.raw)
            case .closeClient(let id, _): mix(211, id.raw)
            case .answerRequest(let id, let answer): mix(212, id.raw << 12 | UInt64(answer.status))
            case .backendHealthChanged(let id, _, _, let isUp): mix(213 | (isUp ? 1 << 8 : 0), id.raw)
            }
        }
    }
}
