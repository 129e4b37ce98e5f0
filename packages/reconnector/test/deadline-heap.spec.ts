import { expect } from 'aegir/chai'
import fc from 'fast-check'
import { DeadlineHeap } from '../src/deadline-heap.ts'
import type { HeapItem } from '../src/deadline-heap.ts'

interface Item extends HeapItem { id: number }

describe('DeadlineHeap', () => {
  it('pops due items in deadline order after any mix of upserts, moves and deletes', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('upsert' as const), id: fc.integer({ min: 0, max: 30 }), due: fc.integer({ min: 0, max: 1_000 }) }),
      fc.record({ kind: fc.constant('delete' as const), id: fc.integer({ min: 0, max: 30 }), due: fc.constant(0) })
    )
    fc.assert(fc.property(fc.array(op, { maxLength: 200 }), fc.integer({ min: 0, max: 1_000 }), (ops, now) => {
      const heap = new DeadlineHeap<Item>()
      const items = new Map<number, Item>()
      const model = new Map<number, number>()
      for (const { kind, id, due } of ops) {
        const item = items.get(id) ?? { id, due: 0, heapIndex: -1 }
        items.set(id, item)
        if (kind === 'upsert') {
          item.due = due
          heap.upsert(item)
          model.set(id, due)
        } else {
          heap.delete(item)
          model.delete(id)
        }
      }
      expect(heap.size).to.equal(model.size)
      const popped: number[] = []
      for (let item = heap.popDue(now); item != null; item = heap.popDue(now)) {
        popped.push(item.due)
        expect(item.heapIndex).to.equal(-1)
      }
      const expected = [...model.values()].filter(due => due <= now).sort((a, b) => a - b)
      expect(popped).to.deep.equal(expected)
      expect(heap.size).to.equal(model.size - expected.length)
    }))
  })

  it('heapify restores the order after many deadlines changed in place', () => {
    const heap = new DeadlineHeap<Item>()
    const items = Array.from({ length: 100 }, (_, id) => ({ id, due: id, heapIndex: -1 }))
    items.forEach(item => { heap.upsert(item) })
    items.forEach(item => { item.due = 1_000 - item.id })
    heap.heapify()
    expect(heap.peek()?.id).to.equal(99)
    heap.clear()
    expect(heap.size).to.equal(0)
    expect(items.every(item => item.heapIndex === -1)).to.equal(true)
  })
})
