//! kstatus conditions: Ready, Reconciling and Stalled, and their transition times.

use super::*;

#[test]
fn missing_children_are_applied_again_and_conditions_keep_their_times() {
    let s = spec();
    let st = deployed(&s);
    let mut c = Case::new(&s, &st);
    c.children = ChildrenView {
        engine_objects: false,
        pods: 0,
        deployment: None,
        config_map: false,
        pod_problem: None,
        standby: false,
    };
    assert!(c.plan().actions.contains(&Action::ApplyChildren));
    let first = Case::new(&s, &st).plan();
    let mut c = Case::new(&s, &first.status);
    c.at = 500;
    let later = c.plan();
    assert_eq!(later.status.conditions, first.status.conditions);
    assert_eq!(later.status, first.status, "a steady reconcile changes nothing");
}
