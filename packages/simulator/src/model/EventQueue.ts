/**
 * The discrete-event queue that drives a model run in simulated time. Times are whole
 * milliseconds; events at the same millisecond run in the order they were scheduled (FIFO), which
 * makes a run deterministic. Events are kept in one bucket per distinct millisecond and only the
 * distinct times go through the binary heap: a large mesh schedules tens of thousands of events per
 * simulated second, most of them sharing a millisecond with others, so this halves the heap work.
 */

export class EventQueue<E> {
  private readonly buckets = new Map<number, E[]>()
  private readonly heap: number[] = []
  private size = 0

  get length(): number {
    return this.size
  }

  /** Schedules `event` at `atMillis` (rounded down to a whole millisecond). */
  push(atMillis: number, event: E): void {
    const t = Math.floor(atMillis)
    let bucket = this.buckets.get(t)
    if (bucket === undefined) {
      bucket = []
      this.buckets.set(t, bucket)
      heapPush(this.heap, t)
    }
    bucket.push(event)
    this.size++
  }

  /** Time of the earliest pending event, or undefined when empty. */
  peekTime(): number | undefined {
    return this.heap[0]
  }

  /**
   * Removes and returns every event of the earliest millisecond, in scheduling order. Events
   * scheduled for that same millisecond while the caller handles these land in a fresh bucket and
   * come out of the next call.
   */
  popBucket(): { readonly atMillis: number; readonly events: ReadonlyArray<E> } | undefined {
    const t = heapPop(this.heap)
    if (t === undefined) return undefined
    const events = this.buckets.get(t) ?? []
    this.buckets.delete(t)
    this.size -= events.length
    return { atMillis: t, events }
  }
}

/**
 * The model run's queue: like EventQueue, with the link-state deliveries of a millisecond in a lane
 * of their own, handed out before that millisecond's other events. A run split over threads
 * receives another thread's deliveries at a barrier, i.e. in another order than one thread pushes
 * them; the run sorts each millisecond's deliveries by (recipient, origin, message) so both orders
 * give the same run, and the other events of a site keep their scheduling order (a site's own
 * events are pushed only by that site, in the same order on any number of threads).
 */
export class LaneQueue<E> {
  private readonly buckets = new Map<number, { readonly deliveries: number[]; readonly events: E[] }>()
  private readonly heap: number[] = []

  private bucketAt(atMillis: number): { readonly deliveries: number[]; readonly events: E[] } {
    const t = Math.floor(atMillis)
    let bucket = this.buckets.get(t)
    if (bucket === undefined) {
      bucket = { deliveries: [], events: [] }
      this.buckets.set(t, bucket)
      heapPush(this.heap, t)
    }
    return bucket
  }

  push(atMillis: number, event: E): void {
    this.bucketAt(atMillis).events.push(event)
  }

  pushDelivery(atMillis: number, delivery: number): void {
    this.bucketAt(atMillis).deliveries.push(delivery)
  }

  peekTime(): number | undefined {
    return this.heap[0]
  }

  /** Every event of the earliest millisecond (events pushed for it meanwhile come out of the next call). */
  popBucket(): { readonly atMillis: number; readonly deliveries: number[]; readonly events: E[] } | undefined {
    const t = heapPop(this.heap)
    if (t === undefined) return undefined
    const bucket = this.buckets.get(t)!
    this.buckets.delete(t)
    return { atMillis: t, deliveries: bucket.deliveries, events: bucket.events }
  }
}

/** A binary min-heap of distinct times in a plain array (both queues keep one). */
const heapPush = (h: number[], t: number): void => {
  h.push(t)
  let i = h.length - 1
  while (i > 0) {
    const p = (i - 1) >> 1
    const hp = h[p] as number
    if (hp <= t) break
    h[i] = hp
    i = p
  }
  h[i] = t
}

const heapPop = (h: number[]): number | undefined => {
  if (h.length === 0) return undefined
  const top = h[0] as number
  const last = h.pop() as number
  if (h.length > 0) {
    let i = 0
    const n = h.length
    for (;;) {
      const l = 2 * i + 1
      if (l >= n) break
      const r = l + 1
      const c = r < n && (h[r] as number) < (h[l] as number) ? r : l
      if ((h[c] as number) >= last) break
      h[i] = h[c] as number
      i = c
    }
    h[i] = last
  }
  return top
}
