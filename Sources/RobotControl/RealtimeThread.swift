import Glibc

/// A pthread that runs `body` and tries to become real-time (SCHED_FIFO and locked
/// memory). Either can be refused (no CAP_SYS_NICE, a container); the thread then
/// runs on as an ordinary one and `notes` says why.
final class RealtimeThread: @unchecked Sendable {
    private var thread = pthread_t()
    private let body: @Sendable (RealtimeThread) -> Void
    private(set) var notes: [String] = []
    private(set) var isRealtime = false
    let priority: Int32

    init(priority: Int32, body: @escaping @Sendable (RealtimeThread) -> Void) {
        self.priority = priority
        self.body = body
    }

    func start() -> Bool {
        let context = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&thread, nil, { raw in
            guard let raw else { return nil }
            let me = Unmanaged<RealtimeThread>.fromOpaque(raw).takeRetainedValue()
            me.becomeRealtime()
            me.body(me)
            return nil
        }, context)
        if rc != 0 {
            Unmanaged<RealtimeThread>.fromOpaque(context).release()
            return false
        }
        return true
    }

    func join() {
        pthread_join(thread, nil)
    }

    private func becomeRealtime() {
        var param = sched_param()
        param.sched_priority = priority
        let rc = pthread_setschedparam(pthread_self(), SCHED_FIFO, &param)
        if rc == 0 {
            isRealtime = true
        } else {
            notes.append("SCHED_FIFO refused (\(String(cString: strerror(rc)))); the loop runs at normal priority")
        }
        if mlockall(Int32(MCL_CURRENT | MCL_FUTURE)) != 0 {
            notes.append("mlockall refused (\(String(cString: strerror(errno)))); memory may page")
        }
    }
}

/// Sleeps until an absolute CLOCK_MONOTONIC time.
@inline(__always)
func sleepUntil(nanoseconds deadline: UInt64) {
    var ts = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
    while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nil) == EINTR {}
}
