import Logging
import ShuttleModel

/// Steps both HTTP paths (NIO's `HTTPProxyHandler`, the relay's
/// `HTTPRelayConnection`) take alike: what a failed request says, and
/// carrying out the model's decision for a request.
extension HTTPAnswer {
    /// For an answer the model gave without a backend: the access log's
    /// `err=`, and the warning's reason when the answer is a failure of
    /// the service (502, 503) rather than of the request.
    var failure: (error: String, warning: String?) {
        switch self {
        case .allBackendsFailed(_, let lastError): return (lastError, "no backend connected: \(lastError)")
        case .noBackend: return ("no backend up", "no backend up")
        case .badRequest(let reason): return (reason, nil)
        case .unknownHost, .redirect, .maintenance: return ("", nil)
        }
    }
}

extension Driver {
    /// Carries out the model's actions for the request `id` (both HTTP
    /// paths): its backend to connect, or its answer; any other action is
    /// the driver's.
    func carryOut(
        _ actions: [Action], forRequest id: ConnectionID, connect: (BackendTarget) -> Void, answer: (HTTPAnswer) -> Void
    ) {
        for action in actions {
            switch action {
            case .connectBackend(id, let target): connect(target)
            case .answerRequest(id, let reply): answer(reply)
            default: perform(action)
            }
        }
    }

    /// "request failed", at most once a second per service and status
    /// (`shouldLog`); the access log has a line for every request.
    func warnRequestFailed(requestID: String, service: String, backend: String?, status: Int, reason: String) {
        let (say, heldBack) = shouldLog("request failed \(service) \(status)")
        guard say else { return }
        var metadata: Logger.Metadata = [
            "request_id": "\(requestID)", "service": "\(service)", "status": "\(status)", "reason": "\(reason)",
            "held_back": "\(heldBack)",
        ]
        if let backend { metadata["backend"] = "\(backend)" }
        logger.warning("request failed", metadata: metadata)
    }
}
