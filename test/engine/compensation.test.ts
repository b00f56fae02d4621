import { afterAll, describe, expect, it } from 'vitest';
import { Instance, closeEvaluator, loadGraph } from './helpers.js';

afterAll(closeEvaluator);

describe('compensation', () => {
  it('compensates every completed activity in reverse order, each with the variables it completed with', async () => {
    const inst = Instance.start(await loadGraph('compensation.bpmn', 'compensate_all'), { undone: [] });
    // two records are kept while the instance waits: only compensable activities are recorded
    expect(inst.state.scopes[inst.state.rootScopeId]?.compensation?.map((r) => r.activityId)).toEqual(['book_hotel', 'book_flight']);
    inst.completeTask('decide', { undoWhat: 'all' });
    expect(inst.status).toBe('completed');
    // book_flight completed after hotel was changed, book_hotel before
    expect(inst.variables).toMatchObject({ flightUndone: 'flight F1 (hotel was CHANGED)', hotelUndone: 'hotel H1', refund: 100, hotel: 'CHANGED' });
    expect(inst.path()).toEqual(['start', 'book_hotel', 'book_flight', 'decide', 'which', 'undo_all', 'undo_flight', 'undo_hotel', 'end']);
    expect(inst.history.find((h) => h.event === 'compensation_started')?.data).toEqual({ activities: ['book_flight', 'book_hotel'] });
  });

  it('compensates one activity named by activityRef', async () => {
    const inst = Instance.start(await loadGraph('compensation.bpmn', 'compensate_all'), { undone: [] });
    inst.completeTask('decide', { undoWhat: 'flight' });
    expect(inst.status).toBe('completed');
    expect(inst.variables['flightUndone']).toBe('flight F1 (hotel was CHANGED)');
    expect(inst.variables).not.toHaveProperty('hotelUndone');
    expect(inst.path()).toEqual(['start', 'book_hotel', 'book_flight', 'decide', 'which', 'undo_one', 'undo_flight']);
  });

  it('runs no handler when nothing needs compensation and drops the records at the end', async () => {
    const inst = Instance.start(await loadGraph('compensation.bpmn', 'compensate_all'), { undone: [] });
    inst.completeTask('decide', { undoWhat: 'none' });
    expect(inst.status).toBe('completed');
    expect(inst.variables).not.toHaveProperty('flightUndone');
    expect(inst.path()).not.toContain('undo_flight');
  });
});

describe('transaction subprocess', () => {
  it('a cancel end event cancels the rest of the transaction, compensates it and leaves by the cancel boundary event', async () => {
    const inst = Instance.start(await loadGraph('compensation.bpmn', 'transaction_cancel'));
    expect(inst.active).toEqual(['paperwork', 'pay', 'tx']);
    inst.completeTask('pay', { declined: true });
    expect(inst.active).toEqual(['refund']);
    expect(inst.cancelledTasks()).toEqual(['paperwork']);
    expect(inst.path()).toEqual(['t_start', 'tx', 'tx_start', 'x_fork', 'reserve', 'pay', 'paperwork', 'paid', 'tx_cancel', 'release', 'on_cancel', 'refund']);
    expect(inst.path('element_cancelled')).toEqual(['paperwork', 'tx']);
    // the handler's result is written to the transaction scope, which the cancel discards
    expect(inst.variables).toEqual({});
    expect(Object.keys(inst.state.scopes)).toEqual([inst.state.rootScopeId]);
  });

  it('completes normally; its compensation records go to the parent scope and end with the instance', async () => {
    const inst = Instance.start(await loadGraph('compensation.bpmn', 'transaction_cancel'));
    inst.completeTask('pay', { declined: false });
    const txScope = Object.values(inst.state.scopes).find((s) => s.elementId === 'tx');
    expect(txScope?.compensation).toEqual([{ activityId: 'reserve', handlerId: 'release', variables: { seats: 2 } }]);
    inst.completeTask('paperwork');
    expect(inst.status).toBe('completed');
    expect(inst.path()).toEqual(['t_start', 'tx', 'tx_start', 'x_fork', 'reserve', 'pay', 'paperwork', 'paid', 'tx_end', 't_done']);
    // nothing of the compensation bookkeeping outlives the instance
    expect(inst.state.scopes[inst.state.rootScopeId]?.compensation).toBeUndefined();
  });
});
