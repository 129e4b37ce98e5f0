/**
 * The one timer structure of the reconnector: a binary min-heap of held peers keyed by their
 * next deadline. Each item remembers its own index, so a peer that returns or is rescheduled
 * is moved or taken out in O(log n) instead of being left behind as a stale item. The service
 * arms a single clock timer for the top of the heap.
 */

export interface HeapItem {
  /** when the item is due, on the service's clock */
  due: number
  /** position in the heap; -1 when not in it */
  heapIndex: number
}

export class DeadlineHeap<T extends HeapItem> {
  private readonly items: T[] = []

  get size (): number {
    return this.items.length
  }

  peek (): T | undefined {
    return this.items[0]
  }

  has (item: T): boolean {
    return item.heapIndex >= 0 && this.items[item.heapIndex] === item
  }

  /** Adds the item, or moves it after its `due` changed */
  upsert (item: T): void {
    if (!this.has(item)) {
      item.heapIndex = this.items.length
      this.items.push(item)
      this.up(item.heapIndex)
      return
    }
    this.down(this.up(item.heapIndex))
  }

  delete (item: T): void {
    if (!this.has(item)) {
      return
    }
    const index = item.heapIndex
    const last = this.items.pop() as T
    item.heapIndex = -1
    if (last !== item) {
      this.items[index] = last
      last.heapIndex = index
      this.down(this.up(index))
    }
  }

  /** Takes the earliest item out if it is due at `now` */
  popDue (now: number): T | undefined {
    const top = this.items[0]
    if (top === undefined || top.due > now) {
      return undefined
    }
    this.delete(top)
    return top
  }

  clear (): void {
    for (const item of this.items) {
      item.heapIndex = -1
    }
    this.items.length = 0
  }

  /** After many `due` values changed at once (resume): O(n) */
  heapify (): void {
    for (let i = (this.items.length >> 1) - 1; i >= 0; i--) {
      this.down(i)
    }
  }

  private up (index: number): number {
    const item = this.items[index]
    while (index > 0) {
      const parentIndex = (index - 1) >> 1
      const parent = this.items[parentIndex]
      if (parent.due <= item.due) {
        break
      }
      this.place(parent, index)
      index = parentIndex
    }
    this.place(item, index)
    return index
  }

  private down (index: number): void {
    const item = this.items[index]
    const length = this.items.length
    for (;;) {
      const left = 2 * index + 1
      if (left >= length) {
        break
      }
      const right = left + 1
      const child = right < length && this.items[right].due < this.items[left].due ? right : left
      if (this.items[child].due >= item.due) {
        break
      }
      this.place(this.items[child], index)
      index = child
    }
    this.place(item, index)
  }

  private place (item: T, index: number): void {
    this.items[index] = item
    item.heapIndex = index
  }
}
