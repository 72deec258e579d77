// The explicit list of gradient-rule families (no static self-registration a linker could drop).
#include "grad/rules.h"

namespace asrc::grad {

void RegisterElementwiseRules(RuleTable& t);
void RegisterNNRules(RuleTable& t);
void RegisterShapeRules(RuleTable& t);
void RegisterConvRules(RuleTable& t);
void RegisterRnnRules(RuleTable& t);
void RegisterLossRules(RuleTable& t);

void RegisterAllRules(RuleTable& t) {
  RegisterElementwiseRules(t);
  RegisterNNRules(t);
  RegisterShapeRules(t);
  RegisterConvRules(t);
  RegisterRnnRules(t);
  RegisterLossRules(t);
}

}  // namespace asrc::grad
