import { AbortError, CAPABILITIES, checkOptions, emit, findService, InvalidArgumentError, registerService, TimeoutError, TrackedTimers } from '@holdfast/interface'
import { serviceCapabilities } from '@libp2p/interface'
import { setMaxListeners, TypedEventEmitter } from 'main-event'
import { configOf } from './config.ts'
import { SupervisorStoppedError } from './errors.ts'
import { eventProblem, isDebounced, planRecovery, snapshotProblem } from './policy.ts'
import { DefaultProcessor } from './processor.ts'
import type { NetworkSupervisorConfig } from './config.ts'
import type { NetworkAdapter, NetworkEventProcessor, NetworkSupervisor as NetworkSupervisorInterface, NetworkSupervisorComponents, NetworkSupervisorEvents, NetworkSupervisorInit, NetworkSupervisorStats } from './index.ts'
import type { RecoveryPlan } from './policy.ts'
import type { AppLifecycleState, CleanupBroadcaster, Clock, InternalSizes, NetworkCleanupReason, NetworkEvent, NetworkEventResult, NetworkSnapshot, ReconnectReason, RecoveryAction } from '@holdfast/interface'
import type { AbortOptions, Counter, CounterGroup, Logger, Startable } from '@libp2p/interface'

/** One caller waiting for its batch */
interface Request {
  readonly event: NetworkEvent
  answered: boolean
  timer?: unknown
  signal?: AbortSignal
  onAbort?(): void
  resolve(result: NetworkEventResult): void
  reject(error: Error): void
}

export class NetworkSupervisor extends TypedEventEmitter<NetworkSupervisorEvents> implements NetworkSupervisorInterface, Startable {
  readonly [Symbol.toStringTag] = '@holdfast/network-supervisor'
  readonly [serviceCapabilities]: string[] = [CAPABILITIES.networkSupervisor]

  private readonly components: NetworkSupervisorComponents
  private readonly log: Logger
  private readonly clock: Clock
  private readonly config: NetworkSupervisorConfig
  private readonly customProcessor?: NetworkEventProcessor
  private readonly adapters: readonly NetworkAdapter[]
  private processor?: NetworkEventProcessor
  private broadcaster?: CleanupBroadcaster
  private started = false

  /** the open batch: events waiting for the settle window to close (and for a running action) */
  private queue: Request[] = []
  private settleTimer?: unknown
  /** the open batch's window has closed; it runs as soon as no action is running */
  private settled = false
  /** the batch whose action is running */
  private inFlight: Request[] = []
  private running?: Promise<void>
  private runController?: AbortController
  private current?: NetworkSnapshot
  /** last start of a custom processor's offline / probe / restore, for the debounce */
  private readonly lastStarted = new Map<RecoveryAction, number>()
  private readonly timers: TrackedTimers
  private signalListeners = 0
  private readonly counts: NetworkSupervisorStats = { events: 0, batches: 0, actions: {}, failures: 0, invalidEvents: 0, timeouts: 0, debounced: 0 }
  private readonly metrics?: { events: CounterGroup, actions: CounterGroup, failures: Counter, invalid: Counter, timeouts: Counter, debounced: Counter }

  constructor (components: NetworkSupervisorComponents, init: NetworkSupervisorInit = {}) {
    super()
    this.components = components
    this.log = components.logger.forComponent('holdfast:network-supervisor')
    this.config = configOf(init)
    this.clock = this.config.clock
    this.timers = new TrackedTimers(this.clock)
    this.customProcessor = this.config.processor
    this.adapters = this.config.adapters

    if (components.metrics != null) {
      this.metrics = {
        events: components.metrics.registerCounterGroup('holdfast_network_supervisor_events_total', { label: 'type', help: 'Network events accepted, by type' }),
        actions: components.metrics.registerCounterGroup('holdfast_network_supervisor_actions_total', { label: 'action', help: 'Recovery actions run, one per batch' }),
        failures: components.metrics.registerCounter('holdfast_network_supervisor_action_failures_total', { help: 'Recovery actions with a failed step' }),
        invalid: components.metrics.registerCounter('holdfast_network_supervisor_invalid_events_total', { help: 'Malformed events rejected' }),
        timeouts: components.metrics.registerCounter('holdfast_network_supervisor_result_timeouts_total', { help: 'Callers answered with TimeoutError' }),
        debounced: components.metrics.registerCounter('holdfast_network_supervisor_debounced_total', { help: 'Actions of a custom processor skipped by the debounce' })
      }
    }
    registerService(components, this)
  }

  // ---------------------------------------------------------------- lifecycle

  start (): void {
    if (this.started) {
      return
    }
    this.started = true
    this.broadcaster = findService<CleanupBroadcaster>(this.components, CAPABILITIES.cleanupBroadcaster)
    this.processor = this.customProcessor ?? new DefaultProcessor(this.components, { probeTimeout: this.config.probeTimeout, clock: this.clock, log: this.log })
    for (const adapter of this.adapters) {
      try {
        adapter.start({ event: this.onAdapterEvent, baseline: this.onBaseline }, { clock: this.clock, log: this.log.newScope(adapter.name) })
      } catch (err) {
        this.log.error('adapter %s failed to start - %e', adapter.name, err)
      }
    }
  }

  async stop (): Promise<void> {
    if (!this.started) {
      return
    }
    this.started = false
    for (const adapter of this.adapters) {
      try {
        adapter.stop()
      } catch (err) {
        this.log.error('adapter %s failed to stop - %e', adapter.name, err)
      }
    }
    if (this.settleTimer !== undefined) {
      this.timers.clear(this.settleTimer)
      this.settleTimer = undefined
    }
    this.settled = false
    const error = new SupervisorStoppedError('The network supervisor stopped before the result was ready')
    for (const request of [...this.queue, ...this.inFlight]) {
      this.answer(request, error)
    }
    this.queue = []
    this.runController?.abort(error)
    await this.running
    this.timers.clearAll()
    this.lastStarted.clear()
    this.broadcaster = undefined
    this.processor = undefined
  }

  // ---------------------------------------------------------------- the API

  handle (event: NetworkEvent, opts?: AbortOptions): Promise<NetworkEventResult> {
    // not async: a bad event must not leave anything behind, and the promise handed out is
    // the one the batch answers
    if (!this.started) {
      return Promise.reject(new SupervisorStoppedError())
    }
    let options: AbortOptions
    try {
      options = checkOptions(opts)
    } catch (err) {
      return Promise.reject(err)
    }
    const problem = eventProblem(event)
    if (problem !== undefined) {
      this.counts.invalidEvents++
      this.metrics?.invalid.increment()
      this.log('rejected a malformed event: %s', problem)
      return Promise.reject(new InvalidArgumentError(problem, 'event'))
    }
    if (options.signal?.aborted === true) {
      return Promise.reject(new AbortError())
    }
    const { promise, resolve, reject } = Promise.withResolvers<NetworkEventResult>()
    const request: Request = { event, answered: false, resolve, reject }
    request.timer = this.timers.set(() => {
      request.timer = undefined
      this.counts.timeouts++
      this.metrics?.timeouts.increment()
      this.answer(request, new TimeoutError(`No network event result within ${this.config.resultTimeout} ms`))
    }, this.config.resultTimeout)
    if (options.signal != null) {
      // aborting stops the wait; the event still counts, the platform did change
      const signal = options.signal
      request.signal = signal
      request.onAbort = () => { this.answer(request, new AbortError()) }
      signal.addEventListener('abort', request.onAbort, { once: true })
      this.signalListeners++
    }
    this.counts.events++
    this.metrics?.events.increment({ [event.type]: true })
    this.queue.push(request)
    if (this.settleTimer === undefined && !this.settled) {
      // the first event opens the batch
      this.settleTimer = this.timers.set(this.onSettled, this.config.settleWindow)
    }
    return promise
  }

  async networkPathChanged (snapshot: NetworkSnapshot, options?: AbortOptions): Promise<NetworkEventResult> {
    return this.handle({ type: 'network-path-changed', snapshot }, options)
  }

  async appLifecycleChanged (state: AppLifecycleState, options?: AbortOptions): Promise<NetworkEventResult> {
    return this.handle({ type: 'app-lifecycle-changed', state }, options)
  }

  async cleanupConnections (reason: NetworkCleanupReason, options?: AbortOptions): Promise<NetworkEventResult> {
    return this.handle({ type: 'cleanup-connections', reason }, options)
  }

  async forceReconnect (reason: ReconnectReason, options?: AbortOptions): Promise<NetworkEventResult> {
    return this.handle({ type: 'force-reconnect', reason }, options)
  }

  snapshot (): NetworkSnapshot | undefined {
    return this.current
  }

  stats (): NetworkSupervisorStats {
    return { ...this.counts, actions: { ...this.counts.actions } }
  }

  internalSizes (): InternalSizes {
    let adapterTimers = 0
    let adapterListeners = 0
    for (const adapter of this.adapters) {
      const sizes = adapter.internalSizes?.()
      adapterTimers += sizes?.timers ?? 0
      adapterListeners += sizes?.listeners ?? 0
    }
    return {
      peers: 0,
      timers: this.timers.size + adapterTimers,
      listeners: this.signalListeners + adapterListeners,
      queued: this.queue.length,
      inFlight: this.inFlight.length,
      running: this.running == null ? 0 : 1
    }
  }

  // ---------------------------------------------------------------- adapters

  private readonly onAdapterEvent = (event: NetworkEvent): void => {
    this.handle(event).catch(err => { this.log('adapter event %s not handled - %e', event.type, err) })
  }

  private readonly onBaseline = (snapshot: NetworkSnapshot): void => {
    if (snapshotProblem(snapshot) !== undefined || !this.started) {
      this.log.error('ignoring a malformed baseline snapshot from an adapter')
      return
    }
    if (snapshot.availability === 'unavailable') {
      this.onAdapterEvent({ type: 'network-path-changed', snapshot })
    } else if (this.current === undefined || snapshot.sequence > this.current.sequence) {
      this.current = snapshot
    }
  }

  // ---------------------------------------------------------------- the reconciler

  private readonly onSettled = (): void => {
    this.settleTimer = undefined
    this.settled = true
    this.runNextBatch()
  }

  /** Runs the settled batch unless an action is running: batches never overlap */
  private runNextBatch (): void {
    if (!this.settled || this.running != null || !this.started) {
      return
    }
    // events queued while the window was closed and the previous action ran join this batch
    const batch = this.queue
    this.queue = []
    this.settled = false
    this.inFlight = batch
    this.running = this.runBatch(batch).then(outcome => {
      // the state is clear before anyone hears of the outcome
      this.inFlight = []
      this.running = undefined
      emit(this, this.broadcaster, this.log, 'network:action', outcome.error === undefined
        ? { action: outcome.action, success: true, durationMs: outcome.durationMs }
        : { action: outcome.action, success: false, error: outcome.error, durationMs: outcome.durationMs })
      for (const request of batch) {
        this.answer(request, undefined, outcome.error === undefined
          ? { event: request.event, success: true, durationMs: outcome.durationMs }
          : { event: request.event, success: false, error: outcome.error, durationMs: outcome.durationMs })
      }
      this.runNextBatch()
    })
  }

  /** Chooses and runs the batch's action; never rejects */
  private async runBatch (batch: Request[]): Promise<{ action: RecoveryAction, error?: string, durationMs: number }> {
    const events = batch.map(r => r.event)
    const plan = planRecovery(events, this.current, { longBackgroundThreshold: this.config.longBackgroundThreshold })
    this.current = plan.snapshot
    this.counts.batches++
    this.log('batch of %d events -> %s', events.length, plan.action)
    emit(this, this.broadcaster, this.log, 'network:batch', { events, action: plan.action })

    const controller = new AbortController()
    // one action pings and dials many peers at once, each adding a listener to this signal
    setMaxListeners(Infinity, controller.signal)
    this.runController = controller
    const start = this.clock.now()
    let error: string | undefined
    try {
      await this.runAction(plan, controller.signal)
    } catch (err) {
      error = err instanceof Error ? err.message : String(err)
      this.counts.failures++
      this.metrics?.failures.increment()
      this.log.error('%s failed - %s', plan.action, error)
    } finally {
      this.runController = undefined
    }
    return { action: plan.action, ...(error === undefined ? {} : { error }), durationMs: this.clock.now() - start }
  }

  private async runAction (plan: RecoveryPlan, signal: AbortSignal): Promise<void> {
    const { action } = plan
    const processor = this.processor
    const now = this.clock.now()
    if (this.customProcessor != null && isDebounced(action, this.lastStarted.get(action), now, this.config.debounceWindow)) {
      this.counts.debounced++
      this.metrics?.debounced.increment()
      this.log('%s debounced: the last one started %d ms ago', action, now - (this.lastStarted.get(action) ?? now))
      return
    }
    this.lastStarted.set(action, now)
    this.counts.actions[action] = (this.counts.actions[action] ?? 0) + 1
    this.metrics?.actions.increment({ [action]: true })
    if (processor == null) {
      return
    }
    const options = { signal }
    switch (action) {
      case 'offline': return processor.offline(options)
      case 'probe': return processor.probe(options)
      case 'restore': return processor.restore(options)
      case 'cleanup-only': return processor.cleanupOnly(plan.cleanupReason ?? 'manual-reset', options)
      case 'force-reconnect': return processor.forceReconnect(plan.reconnectReason ?? 'manual-reconnect', { ...options, ...(plan.cleanupReason === undefined ? {} : { cleanupReason: plan.cleanupReason }) })
      default: // noop: nothing to run
    }
  }

  /** Answers a caller once: with its result, or with an error (timeout, abort, stop) */
  private answer (request: Request, error: Error | undefined, result?: NetworkEventResult): void {
    if (request.answered) {
      return
    }
    request.answered = true
    if (request.timer !== undefined) {
      this.timers.clear(request.timer)
      request.timer = undefined
    }
    if (request.signal != null && request.onAbort != null) {
      request.signal.removeEventListener('abort', request.onAbort)
      request.onAbort = undefined
      this.signalListeners--
    }
    if (error != null) {
      request.reject(error)
    } else if (result != null) {
      request.resolve(result)
    }
  }
}
