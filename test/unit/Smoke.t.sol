// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IJobEscrow} from "../../contracts/interfaces/IJobEscrow.sol";
import {AttestaTest} from "../utils/AttestaTest.sol";

contract SmokeTest is AttestaTest {
    function test_fullFlow_paysSignersAndTreasury() public {
        _addOperators(4);
        assertEq(registry.threshold(), 3);
        uint256 jobId = _createJob();
        address[] memory signers = _settleWith(jobId, 3);
        vm.warp(block.timestamp + cfg.escrow.challengeWindow);
        escrow.release(jobId, keccak256(OUTPUT), signers);
        assertEq(uint8(escrow.job(jobId).status), uint8(IJobEscrow.JobStatus.Released));
        uint256 protocolFee = FEE * 500 / 10_000;
        assertEq(escrow.owed(treasury), protocolFee + (FEE - protocolFee) % 3);
    }
}
